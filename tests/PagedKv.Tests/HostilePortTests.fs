/// `check` against hostile ports (tests/PagedKv.Tests/ports/hostile.py in front of the Python
/// port): every outcome is an exit code with a report, within a wall-clock and a peak-memory bound
/// measured outside the checker (ports/measure.py: the child's rusage), and no process of the port
/// outlives `check`.
module PagedKv.Tests.HostilePortTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Threading.Tasks
open Xunit
open Xunit.Abstractions
open PagedKv.Tests.PortCheckTests

let private beside (parts: string list) = Path.Combine(AppContext.BaseDirectory :: parts |> Array.ofList)
let private cli = beside [ "PagedKv.Cli.dll" ]
let private python = beside [ "ports"; "python"; "paged_kv.py" ]
let private hostile = beside [ "ports"; "testing"; "hostile.py" ]
let private measure = beside [ "ports"; "testing"; "measure.py" ]

type Measured =
    { Rc: int
      WallS: float
      PeakRssMiB: float
      Stdout: string
      Stderr: string }

/// Runs `dotnet PagedKv.Cli.dll args…` under measure.py.
let runCli (args: string list) : Measured =
    let info = ProcessStartInfo("python3", measure :: "dotnet" :: cli :: args, RedirectStandardOutput = true, RedirectStandardError = true)
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    let d = JsonDocument.Parse(out).RootElement
    { Rc = d.GetProperty("rc").GetInt32()
      WallS = d.GetProperty("wall_s").GetDouble()
      PeakRssMiB = float (d.GetProperty("peak_rss_kib").GetInt64()) / 1024.0
      Stdout = d.GetProperty("stdout").GetString()
      Stderr = d.GetProperty("stderr").GetString() }

type private Case =
    { Mode: string
      N: int
      Arg: string option
      Rc: int
      /// Text the report must contain (stdout or stderr).
      Says: string
      /// Wall-clock bound, seconds.
      WithinS: float }

/// The peak RSS `check` may reach on any case (MiB): its own ~90 MiB, and no reply, stderr line
/// or endless stream held whole.
[<Literal>]
let PeakRssBoundMiB = 300.0

let private cases =
    [ { Mode = "exit"; N = 20; Arg = None; Rc = 1; Says = "the port exited (code 3) before replying"; WithinS = 30.0 }
      { Mode = "no-read"; N = 20; Arg = None; Rc = 1; Says = "no reply within 1500 ms"; WithinS = 30.0 }
      { Mode = "silent"; N = 20; Arg = None; Rc = 1; Says = "no reply within 1500 ms"; WithinS = 30.0 }
      { Mode = "trickle"; N = 20; Arg = None; Rc = 1; Says = "no reply within 1500 ms"; WithinS = 30.0 }
      { Mode = "endless"; N = 20; Arg = None; Rc = 1; Says = "DIVERGENCE"; WithinS = 30.0 }
      { Mode = "huge"; N = 20; Arg = Some "4000000"; Rc = 1; Says = "past the limit of 1048576 bytes"; WithinS = 30.0 }
      { Mode = "stderr-flood"; N = 20; Arg = Some "200000000"; Rc = 0; Says = "OK: no divergence"; WithinS = 30.0 }
      { Mode = "duplicate"; N = 20; Arg = None; Rc = 1; Says = "an unrequested line after"; WithinS = 30.0 }
      { Mode = "child"; N = 20; Arg = Some("marker-" + string (Guid.NewGuid())); Rc = 1; Says = "holds its stdout open"; WithinS = 30.0 }
      { Mode = "nan"; N = 20; Arg = None; Rc = 1; Says = "the reply is not protocol JSON"; WithinS = 30.0 }
      { Mode = "empty"; N = 20; Arg = None; Rc = 1; Says = "the reply is not protocol JSON"; WithinS = 30.0 }
      { Mode = "no-newline"; N = 20; Arg = None; Rc = 1; Says = "no reply within 1500 ms"; WithinS = 30.0 }
      { Mode = "wrong"; N = 300; Arg = None; Rc = 1; Says = "depends on the port's earlier lifetime"; WithinS = 30.0 }
      { Mode = "hello-malformed"; N = 1; Arg = None; Rc = 2; Says = "its hello has no protocol"; WithinS = 15.0 }
      { Mode = "hello-protocol"; N = 1; Arg = Some "2"; Rc = 2; Says = "it speaks protocol 2; check speaks protocol 1"; WithinS = 15.0 }
      { Mode = "hello-protocol"; N = 1; Arg = Some "\"x\""; Rc = 2; Says = "it speaks protocol \"x\""; WithinS = 15.0 } ]

let private portCommand (c: Case) =
    sprintf "python3 '%s' %s %d %s -- python3 '%s'" hostile c.Mode c.N (c.Arg |> Option.map (fun a -> "'" + a + "'") |> Option.defaultValue "") python

/// Processes whose command line holds `marker`.
let private processesWith (marker: string) =
    Directory.GetDirectories "/proc"
    |> Array.filter (fun d -> Path.GetFileName(d) |> Seq.forall Char.IsDigit)
    |> Array.filter (fun d -> try File.ReadAllText(Path.Combine(d, "cmdline")).Contains marker with _ -> false)
    |> Array.length

type Hostile(output: ITestOutputHelper) =
    [<PythonFact>]
    member _.``check ends every hostile port with an exit code and a report, in bounded time and memory``() =
        let dir = Directory.CreateTempSubdirectory("pagedkv-hostile").FullName
        let results =
            cases
            |> List.mapi (fun i c -> i, c)
            |> List.map (fun (i, c) ->
                Task.Run(fun () ->
                    let repro = Path.Combine(dir, sprintf "repro-%d.jsonl" i)
                    c, runCli [ "check"; "--impl"; portCommand c; "--ops"; "4000"; "--seed"; string (Settings.seed + uint64 i); "--timeout-ms"; "1500"; "--shrink-timeout"; "3"; "--repro"; repro ]))
            |> Array.ofList
        Task.WaitAll(results |> Array.map (fun t -> t :> Task))
        output.WriteLine "| case | exit | wall s | peak RSS MiB |"
        for t in results do
            let c, m = t.Result
            output.WriteLine(sprintf "| %s %d %s | %d | %.1f | %.0f |" c.Mode c.N (defaultArg c.Arg "") m.Rc m.WallS m.PeakRssMiB)
        for t in results do
            let c, m = t.Result
            let text = m.Stdout + m.Stderr
            Assert.True(m.Rc = c.Rc, sprintf "%s: exit %d, expected %d\n%s" c.Mode m.Rc c.Rc text)
            Assert.True(text.Contains c.Says, sprintf "%s: the report does not say '%s'\n%s" c.Mode c.Says text)
            Assert.True(m.WallS < c.WithinS, sprintf "%s: %.1f s (bound %.0f s)" c.Mode m.WallS c.WithinS)
            Assert.True(m.PeakRssMiB < PeakRssBoundMiB, sprintf "%s: peak RSS %.0f MiB (bound %.0f)" c.Mode m.PeakRssMiB PeakRssBoundMiB)
            Assert.DoesNotContain("Unhandled exception", text)
        // The child that held stdout open was killed with the port's process group.
        for c in cases do
            match c.Mode, c.Arg with
            | "child", Some marker -> Assert.Equal(0, processesWith marker)
            | _ -> ()
        Directory.Delete(dir, true)

    [<Fact>]
    member _.``--repro into a missing folder is a usage error before any work; a port that cannot start is exit 2``() =
        let m = runCli [ "check"; "--impl"; "exec /nonexistent/port"; "--repro"; "/nonexistent-folder/x.jsonl" ]
        Assert.Equal(2, m.Rc)
        Assert.Contains("the folder /nonexistent-folder does not exist", m.Stderr)
        let m = runCli [ "check"; "--impl"; "exec /nonexistent/port"; "--repro"; Path.Combine(Path.GetTempPath(), "x.jsonl") ]
        Assert.Equal(2, m.Rc)
        Assert.Contains("exited (code 127) before answering hello", m.Stderr)
