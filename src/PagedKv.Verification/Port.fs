/// A port under check: a process started through the shell that speaks the replay protocol on
/// stdin/stdout. Replies are read by a background thread into a queue, so that the checker can
/// send ahead (no pipe can fill up and deadlock) and wait for each reply with a timeout.
namespace PagedKv.Verification

open System
open System.Collections.Concurrent
open System.Collections.Generic
open System.Diagnostics
open System.Text
open System.Threading

/// What waiting for one reply line gave.
type Received =
    | Line of string
    /// The port closed its stdout (exited or crashed); its exit code when known.
    | Closed of exitCode: int option
    | TimedOut

type PortProcess(command: string) =
    let utf8 = UTF8Encoding(false)
    let mutable proc: Process = null
    let mutable lines = new BlockingCollection<string>()
    let stderrTail = Queue<string>()
    let gate = obj ()

    let start () =
        let info = ProcessStartInfo("/bin/sh", [| "-c"; command |])
        info.RedirectStandardInput <- true
        info.RedirectStandardOutput <- true
        info.RedirectStandardError <- true
        info.UseShellExecute <- false
        info.StandardInputEncoding <- utf8
        info.StandardOutputEncoding <- utf8
        info.StandardErrorEncoding <- utf8
        let p = Process.Start info
        p.StandardInput.AutoFlush <- false
        p.StandardInput.NewLine <- "\n"
        let queue = new BlockingCollection<string>()
        let reader =
            Thread(
                (fun () ->
                    try
                        let mutable line = p.StandardOutput.ReadLine()
                        while not (isNull line) do
                            queue.Add line
                            line <- p.StandardOutput.ReadLine()
                    with _ -> ()
                    queue.CompleteAdding()),
                IsBackground = true)
        reader.Start()
        p.ErrorDataReceived.Add(fun e ->
            if not (isNull e.Data) then
                lock gate (fun () ->
                    stderrTail.Enqueue e.Data
                    if stderrTail.Count > 20 then stderrTail.Dequeue() |> ignore))
        p.BeginErrorReadLine()
        proc <- p
        lines <- queue

    do start ()

    /// The shell command.
    member _.Command = command

    /// How many times the port was (re)started.
    member val Starts = 1 with get, set

    /// Queues one request line (sent at the next Flush or when the buffer fills).
    member _.Send(line: string) =
        try
            proc.StandardInput.WriteLine line
            true
        with :? System.IO.IOException -> false

    member _.Flush() =
        try
            proc.StandardInput.Flush()
            true
        with :? System.IO.IOException -> false

    /// The next reply line, waiting at most `timeoutMs` (after flushing what was sent).
    member this.Receive(timeoutMs: int) : Received =
        this.Flush() |> ignore
        let mutable line = null
        try
            if lines.TryTake(&line, timeoutMs) then Line line
            elif lines.IsCompleted then
                // Let the process finish exiting so that its code is known.
                let exited = proc.WaitForExit 2000
                Closed(if exited then Some proc.ExitCode else None)
            else TimedOut
        with :? InvalidOperationException -> Closed(if proc.HasExited then Some proc.ExitCode else None)

    /// The last lines the port wrote to stderr.
    member _.StderrTail =
        lock gate (fun () -> String.Join("\n", stderrTail))

    /// Kills the process (if running) and starts a fresh one.
    member this.Restart() =
        this.Stop()
        lock gate (fun () -> stderrTail.Clear())
        start ()
        this.Starts <- this.Starts + 1

    member _.Stop() =
        try
            if not proc.HasExited then
                proc.Kill true
                proc.WaitForExit 2000 |> ignore
        with _ -> ()
        proc.Dispose()

    interface IDisposable with
        member this.Dispose() = this.Stop()
