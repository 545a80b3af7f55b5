// Coverage gate: reads coverlet's cobertura report(s) for the reference implementation and
// fails unless line coverage is 100 % and branch coverage at least the given minimum,
// listing every uncovered line and every partly covered branch.
// Usage: dotnet fsi coverage/gate.fsx <results-dir> [min-branch-percent=95]
open System
open System.IO
open System.Xml.Linq

let args = fsi.CommandLineArgs |> Array.skip 1
let dir = if args.Length > 0 then args[0] else "artifacts/test-results"
let minBranch = if args.Length > 1 then float args[1] else 95.0
let reports = Directory.GetFiles(dir, "coverage.cobertura.xml", SearchOption.AllDirectories)
if reports.Length = 0 then
    eprintfn "coverage gate: no coverage.cobertura.xml under %s" dir
    exit 1

let x n = XName.Get n
let attr (e: XElement) n = e.Attribute(x n).Value

// (file, line) → (hits, covered branches, total branches); several reports merge by max hits.
let lines = Collections.Generic.Dictionary<string * int, int * int * int>()
for report in reports do
    let doc = XDocument.Load report
    for cls in doc.Descendants(x "class") do
        let file = attr cls "filename"
        for line in cls.Element(x "lines").Elements(x "line") do
            let number = int (attr line "number")
            let hits = int (attr line "hits")
            let covered, total =
                match line.Attribute(x "condition-coverage") with
                | null -> 0, 0
                | c ->
                    // "50% (1/2)"
                    let inside = c.Value.Substring(c.Value.IndexOf('(') + 1).TrimEnd(')').Split('/')
                    int inside[0], int inside[1]
            let key = file, number
            match lines.TryGetValue key with
            | true, (h, c, t) -> lines[key] <- (max h hits, max c covered, max t total)
            | _ -> lines[key] <- (hits, covered, total)

let total = lines.Count
let uncovered = lines |> Seq.filter (fun kv -> let h, _, _ = kv.Value in h = 0) |> Seq.map (fun kv -> kv.Key) |> Seq.sort |> List.ofSeq
let branches = lines.Values |> Seq.sumBy (fun (_, _, t) -> t)
let coveredBranches = lines.Values |> Seq.sumBy (fun (_, c, _) -> c)
let partial = lines |> Seq.filter (fun kv -> let _, c, t = kv.Value in c < t) |> Seq.sortBy (fun kv -> kv.Key) |> List.ofSeq
let linePct = if total = 0 then 0.0 else 100.0 * float (total - uncovered.Length) / float total
let branchPct = if branches = 0 then 100.0 else 100.0 * float coveredBranches / float branches

printfn "coverage of the reference implementation: lines %.2f%% (%d/%d), branches %.2f%% (%d/%d)"
    linePct (total - uncovered.Length) total branchPct coveredBranches branches
for (file, line) in uncovered do
    printfn "  uncovered line  %s:%d" file line
for kv in partial do
    let file, line = kv.Key
    let _, c, t = kv.Value
    printfn "  partial branch  %s:%d (%d/%d)" file line c t
if uncovered.Length > 0 || branchPct < minBranch then
    printfn "coverage gate FAILED: lines must be 100%%, branches at least %.0f%%" minBranch
    exit 1
printfn "coverage gate passed"
