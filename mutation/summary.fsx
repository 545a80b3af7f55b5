// Summarizes Stryker.NET JSON reports: counts by status and the score over all of them; lists every
// surviving mutant and fails if one is not listed in the equivalent-mutants file (matched by file,
// mutator and the mutated source line, so that line numbers may move), or if the score is below
// the break threshold.
// Usage: dotnet fsi mutation/summary.fsx <equivalent-mutants.md> <break-percent> <mutation-report.json>...
open System
open System.IO
open System.Text.Json

let args = fsi.CommandLineArgs |> Array.skip 1
let listed = File.ReadAllText(args[0]).Replace("\\|", "|") // a table cell escapes | as \|
let breakAt = float args[1]
let reports = args[2..] |> Array.map (fun f -> JsonDocument.Parse(File.ReadAllText f).RootElement)
let normalize (s: string) = String.Join(" ", s.Split([| ' '; '\t' |], StringSplitOptions.RemoveEmptyEntries))

let counts = Collections.Generic.Dictionary<string, int>()
let unlisted = Collections.Generic.List<string>()
for file in reports |> Seq.collect (fun r -> r.GetProperty("files").EnumerateObject()) do
    let source = file.Value.GetProperty("source").GetString().Split('\n')
    let name = file.Name.Substring(file.Name.IndexOf("src/PagedKv/") + "src/PagedKv/".Length)
    for m in file.Value.GetProperty("mutants").EnumerateArray() do
        let status = m.GetProperty("status").GetString()
        counts[status] <- (match counts.TryGetValue status with | true, n -> n | _ -> 0) + 1
        if status = "Survived" || status = "NoCoverage" then
            let line = m.GetProperty("location").GetProperty("start").GetProperty("line").GetInt32()
            let code = normalize source[line - 1]
            let mutator = m.GetProperty("mutatorName").GetString()
            let entry = sprintf "%s:%d %s [%s] `%s`" status line name mutator code
            printfn "  %s" entry
            let known = listed.Contains(name) && listed.Contains(mutator) && listed.Contains(code)
            if not known then unlisted.Add entry

let get s = match counts.TryGetValue s with | true, n -> n | _ -> 0
let killed, timeout, survived, noCoverage = get "Killed", get "Timeout", get "Survived", get "NoCoverage"
let detected = killed + timeout
let valid = detected + survived + noCoverage
printfn "mutants: %d killed, %d timeout, %d survived, %d no coverage; %d compile errors, %d ignored"
    killed timeout survived noCoverage (get "CompileError") (get "Ignored")
printfn "mutation score: %.2f%% (%d/%d)" (100.0 * float detected / float (max valid 1)) detected valid
if unlisted.Count > 0 then
    printfn "mutation gate FAILED: %d surviving mutant(s) not listed as equivalent in %s:" unlisted.Count args[0]
    for u in unlisted do printfn "  %s" u
    exit 1
if 100.0 * float detected / float (max valid 1) < breakAt then
    printfn "mutation gate FAILED: the score is below %.0f%%" breakAt
    exit 1
