/// `check`'s engine (PortCheck) against real processes: the Python port (ports/python), clean and
/// with each planted porting bug, and ports that crash, hang or garble their output.
module PagedKv.Tests.PortCheckTests

open System
open System.IO
open Xunit
open Xunit.Abstractions
open FsCheck
open PagedKv.Verification

let private python =
    lazy
        (try
            use p = Diagnostics.Process.Start(Diagnostics.ProcessStartInfo("python3", "--version", RedirectStandardOutput = true, RedirectStandardError = true))
            p.WaitForExit 10000 && p.ExitCode = 0
         with _ -> false)

/// A Fact that is skipped, visibly, when python3 is not on PATH (.ci/run requires it, so CI runs these).
type PythonFactAttribute() as this =
    inherit FactAttribute()
    do
        if not python.Value then
            this.Skip <- "python3 is not on PATH: the Python port's checks are skipped"

type PythonTheoryAttribute() as this =
    inherit TheoryAttribute()
    do
        if not python.Value then
            this.Skip <- "python3 is not on PATH: the Python port's checks are skipped"

let private port bug =
    let script = Path.Combine(AppContext.BaseDirectory, "ports", "python", "paged_kv.py")
    (match bug with Some b -> sprintf "PAGEDKV_PORT_BUG=%s " b | None -> "") + sprintf "exec python3 '%s'" script

/// Runs check's campaign against `command` for at least `ops` ops.
let private check (command: string) (options: PortCheck.Options) (ops: int64) =
    use p = new PortProcess(command)
    let hello = PortCheck.hello p options.TimeoutMs
    Assert.True(hello.IsOk, sprintf "hello: %A" hello)
    Campaign.runWith (PortCheck.run p options) (PortCheck.arbitrary options.Profile options.Seq options.Req) ops Settings.seed ignore

type PythonPort(output: ITestOutputHelper) =
    static member Bugs = [ "scan-from-bottom"; "shift-remove"; "peak-misses-resurrection"; "allocate-n-partial"; "stale-reverse-entry"; "token-as-u64" ] |> List.map (fun b -> [| box b |])

    [<PythonFact>]
    member _.``the Python port passes check: lifo, lifo valid-only, lru, any``() =
        let budget = int64 (20_000.0 * Settings.scale)
        for options in
            [ PortCheck.defaults
              { PortCheck.defaults with ValidOnly = true }
              { PortCheck.defaults with Profile = PortCheck.Lru }
              { PortCheck.defaults with Profile = PortCheck.Any } ] do
            let r = check (port None) options budget
            output.WriteLine(sprintf "%A valid-only=%b: %d ops, %.1f%% invalid, %.0f ops/s (seed %d)" options.Profile options.ValidOnly r.Totals.Ops (100.0 * r.Totals.InvalidShare) r.OpsPerSecond r.Seed)
            match r.Found with
            | Some f -> failwithf "%A: %s" options.Profile f.Failure.Report
            | None -> Assert.True(r.Totals.Ops >= budget)
            if options.ValidOnly then Assert.Equal(0L, r.Totals.Invalid) else Assert.True(r.Totals.InvalidShare > 0.1)

    [<PythonTheory; MemberData(nameof PythonPort.Bugs)>]
    member _.``check finds each planted porting bug and shrinks it to at most 10 requests``(bug: string) =
        let r = check (port (Some bug)) PortCheck.defaults 200_000L
        match r.Found with
        | None -> failwithf "planted bug %s was not found in %d ops (seed %d)" bug r.Totals.Ops r.Seed
        | Some f ->
            output.WriteLine(f.Failure.Report)
            Assert.True(f.Failure.Protocol.Length <= 10, sprintf "%s shrunk to %d requests:\n%s" bug f.Failure.Protocol.Length f.Failure.Report)

    [<PythonFact>]
    member _.``under profile any a port's own legal choices pass, and the model adopts them``() =
        // scan-from-bottom hands out other free blocks than the original: legal under `any`.
        let r = check (port (Some "scan-from-bottom")) { PortCheck.defaults with Profile = PortCheck.Any } (int64 (10_000.0 * Settings.scale))
        Assert.True(r.Found.IsNone, sprintf "%A" (r.Found |> Option.map (fun f -> f.Failure.Report)))

/// A port written inline: a Python one-liner program.
let private inline' (program: string) = sprintf "exec python3 -c '%s'" program

let private history ops = { Capacity = 2; Policy = PagedKv.Spec.Allocator.LifoPreferUnhashed; Ops = ops }

let private runAgainst (command: string) (options: PortCheck.Options) (h: History) =
    use p = new PortProcess(command)
    let r = PortCheck.run p options h
    r, p.Starts

type Misbehaving() =
    [<PythonFact>]
    member _.``a garbled, two-line, extra-field or wrong reply is a divergence, never a crash of check``() =
        let cases =
            [ "import sys\nfor l in sys.stdin: print(\"not json\", flush=True)", "not protocol JSON"
              "import sys\nfor l in sys.stdin: print(\"{\\\"ok\\\":null,\\\"x\\\":1}\", flush=True)", "not protocol JSON"
              "import sys\nfor l in sys.stdin: print(\"{\\\"err\\\":\\\"oops\\\",\\\"msg\\\":\\\"\\\"}\", flush=True)", "not protocol JSON"
              "import sys\nfor l in sys.stdin: print(\"{\\\"ok\\\":null}\\n{\\\"ok\\\":null}\", flush=True)", "wrong reply"
              "import sys\nfor l in sys.stdin: print(\"{\\\"ok\\\":7}\", flush=True)", "wrong reply" ]
        for program, why in cases do
            let r, _ = runAgainst (inline' program) { PortCheck.defaults with TimeoutMs = 2000 } (history [ GAllocate; GAllocate ])
            match r.Failure with
            | Some f -> Assert.True(f.Reason.Contains why, sprintf "%s: %s" program f.Reason)
            | None -> failwithf "%s passed" program

    [<PythonFact>]
    member _.``a port that crashes or hangs is a divergence; the port is restarted``() =
        let crash = inline' "import sys\nsys.stdin.readline()\nprint(\"{\\\"ok\\\":null}\", flush=True)\nsys.exit(3)"
        let r, starts = runAgainst crash PortCheck.defaults (history [ GAllocate ])
        Assert.Contains("exited (code 3)", r.Failure.Value.Reason)
        Assert.Equal(2, starts)
        let hang = inline' "import sys, time\nsys.stdin.readline()\nprint(\"{\\\"ok\\\":null}\", flush=True)\ntime.sleep(60)"
        let clock = Diagnostics.Stopwatch.StartNew()
        let r, starts = runAgainst hang { PortCheck.defaults with TimeoutMs = 300 } (history [ GAllocate ])
        Assert.Contains("no reply within 300 ms", r.Failure.Value.Reason)
        Assert.True(clock.Elapsed.TotalSeconds < 10.0)
        Assert.Equal(2, starts)

    [<Fact>]
    member _.``a port that cannot start is reported by hello, with its stderr``() =
        use p = new PortProcess("exec /nonexistent/port --flag")
        match PortCheck.hello p 5000 with
        | Error why -> Assert.Contains("exited (code 127)", why)
        | Ok h -> failwithf "hello answered %A" h

    [<PythonFact>]
    member _.``an illegal choice under profile any is a divergence``() =
        // Always hands out block 0, free or not.
        let program = "import sys, json\nfor l in sys.stdin:\n r = json.loads(l)\n print(json.dumps({\"ok\": 0 if r[\"op\"] == \"allocate\" else None}), flush=True)"
        let r, _ = runAgainst (inline' program) { PortCheck.defaults with Profile = PortCheck.Any; StateEvery = 0 } (history [ GAllocate; GAllocate ])
        Assert.Contains("an illegal choice: block 0 is not a free block", r.Failure.Value.Reason)
