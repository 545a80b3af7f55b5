/// A port under check: a process started through the shell that speaks the replay protocol on
/// stdin/stdout. Bounded whatever the port does:
/// - requests go through a writer thread, so a port that stops reading never blocks the checker
///   (the reply it owes times out instead);
/// - reply lines are read as bytes by a reader thread up to `Limits.MaxReplyLineBytes`; a longer
///   line is skipped to its newline without being held and reported as `Overlong` with its length
///   and an excerpt; at most `Limits.MaxQueuedReplyBytes` of replies wait unread;
/// - stderr keeps its last `Limits.StderrTailLines` lines, each cut to `Limits.StderrLineChars`;
/// - the port runs in a session of its own (`setsid`), and Restart/Stop kill its whole process
///   group, children that hold stdout open included.
namespace PagedKv.Verification

open System
open System.Collections.Concurrent
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open System.Text
open System.Threading

/// What waiting for one reply line gave.
type Received =
    | Line of string
    /// A reply line past the limit: its length in bytes (so far, when it never ended) and its start.
    | Overlong of bytes: int64 * excerpt: string
    /// The port closed its stdout (exited or crashed); its exit code when known.
    | Closed of exitCode: int option
    /// No line within the timeout; whether the port's own process has exited (a child it started
    /// then holds its stdout open).
    | TimedOut of exited: bool

/// The named bounds of a port session.
module PortLimits =
    /// The longest reply line read (1 MiB): the largest reply a check history can ask for is a
    /// `state` of 4,096 blocks (~60 KB); anything longer is a broken port.
    [<Literal>]
    let MaxReplyLineBytes = 1_048_576
    /// Reply bytes read ahead and not yet taken (64 MiB): the reader waits (and so the port's
    /// writes block) past it; it bounds a port that floods lines.
    [<Literal>]
    let MaxQueuedReplyBytes = 67_108_864L
    /// The longest excerpt of a line a report shows.
    [<Literal>]
    let ExcerptChars = 200
    /// The stderr lines kept, and the characters kept of each.
    [<Literal>]
    let StderrTailLines = 20
    [<Literal>]
    let StderrLineChars = 500
    /// The least wait for the first reply after a (re)start (10 s): an interpreter or a JIT may
    /// start slowly, most of all on a loaded machine; later replies wait `--timeout-ms`.
    [<Literal>]
    let StartupGraceMs = 10_000

module private Native =
    [<DllImport("libc", SetLastError = true)>]
    extern int kill(int pid, int signal)

/// Lines read from a byte stream, each at most `limit` bytes, into a queue bounded in bytes.
type private LineReader(stream: Stream, limit: int, onLine: byte[] -> int -> unit, onOverlong: int64 -> byte[] -> unit) =
    member _.Run() =
        let chunk = Array.zeroCreate<byte> 65536
        let line = Array.zeroCreate<byte> (min limit 65536 |> max 1)
        let mutable buffer = line
        let mutable length = 0 // bytes held in buffer
        let mutable total = 0L // bytes of the current line, held or not
        let mutable ended = false
        while not ended do
            let n = try stream.Read(chunk, 0, chunk.Length) with _ -> 0
            if n <= 0 then ended <- true
            else
                let mutable i = 0
                while i < n do
                    let nl = Array.IndexOf(chunk, 10uy, i, n - i)
                    let stop = if nl < 0 then n else nl
                    let take = stop - i
                    // Hold what fits under the limit; count the rest.
                    let room = limit - length
                    let keep = min take (max room 0)
                    if keep > 0 then
                        if length + keep > buffer.Length then
                            let bigger = Array.zeroCreate<byte> (min limit (max (buffer.Length * 2) (length + keep)))
                            Buffer.BlockCopy(buffer, 0, bigger, 0, length)
                            buffer <- bigger
                        Buffer.BlockCopy(chunk, i, buffer, length, keep)
                        length <- length + keep
                    total <- total + int64 take
                    if nl >= 0 then
                        if total > int64 limit then onOverlong total (Array.sub buffer 0 (min length (4 * PortLimits.ExcerptChars)))
                        else onLine buffer length
                        length <- 0
                        total <- 0L
                        if buffer.Length > 65536 then buffer <- line
                        i <- nl + 1
                    else i <- n
        // A last line without a newline.
        if total > int64 limit then onOverlong total (Array.sub buffer 0 (min length (4 * PortLimits.ExcerptChars)))
        elif total > 0L then onLine buffer length

type private Item =
    | ItemLine of text: string * bytes: int64
    | ItemOverlong of int64 * string

type PortProcess(command: string) =
    static let setsid = File.Exists "/usr/bin/setsid"
    let utf8 = UTF8Encoding(false)
    let mutable proc: Process = null
    let gate = obj ()
    let stderrTail = Queue<string>()
    // Per start: the reply queue (guarded by its own lock), its byte count, whether stdout ended.
    let mutable replies = Queue<Item>()
    let mutable queuedBytes = 0L
    let mutable stdoutEnded = false
    let mutable writes: BlockingCollection<byte[]> = null
    let mutable writeFailed = false
    let mutable sent = 0L
    let mutable received = 0L

    let excerpt (bytes: byte[]) =
        let s = utf8.GetString bytes
        if s.Length > PortLimits.ExcerptChars then s.Substring(0, PortLimits.ExcerptChars) + "…" else s

    let startThread (name: string) (body: unit -> unit) =
        let t = Thread(body, IsBackground = true, Name = name)
        t.Start()

    let startReader (p: Process) (queue: Queue<Item>) =
        let push (item: Item) (size: int64) =
            lock queue (fun () ->
                while queuedBytes > PortLimits.MaxQueuedReplyBytes && Object.ReferenceEquals(queue, replies) do
                    Monitor.Wait(queue, 100) |> ignore
                queue.Enqueue item
                queuedBytes <- queuedBytes + size
                Monitor.PulseAll queue)
        let reader =
            LineReader(p.StandardOutput.BaseStream, PortLimits.MaxReplyLineBytes,
                       (fun buf n -> push (ItemLine(utf8.GetString(buf, 0, n), int64 n)) (int64 n)),
                       (fun total start -> push (ItemOverlong(total, excerpt start)) 0L))
        startThread "port-stdout" (fun () ->
            reader.Run()
            lock queue (fun () ->
                if Object.ReferenceEquals(queue, replies) then stdoutEnded <- true
                Monitor.PulseAll queue))

    let startStderr (p: Process) =
        let keep (text: string) =
            lock gate (fun () ->
                stderrTail.Enqueue text
                if stderrTail.Count > PortLimits.StderrTailLines then stderrTail.Dequeue() |> ignore)
        let cut (buf: byte[]) (n: int) =
            let s = utf8.GetString(buf, 0, min n (4 * PortLimits.StderrLineChars))
            if s.Length > PortLimits.StderrLineChars || n > 4 * PortLimits.StderrLineChars then s.Substring(0, min s.Length PortLimits.StderrLineChars) + sprintf "… (%d bytes)" n else s
        let reader =
            LineReader(p.StandardError.BaseStream, 4 * PortLimits.StderrLineChars,
                       (fun buf n -> keep (cut buf n)),
                       (fun total start -> keep (excerpt start + sprintf "… (%d bytes)" total)))
        startThread "port-stderr" reader.Run

    let startWriter (p: Process) (queue: BlockingCollection<byte[]>) =
        let stdin = new BufferedStream(p.StandardInput.BaseStream, 65536)
        startThread "port-stdin" (fun () ->
            try
                try
                    for bytes in queue.GetConsumingEnumerable() do
                        stdin.Write(bytes, 0, bytes.Length)
                        if queue.Count = 0 then stdin.Flush()
                with _ -> writeFailed <- true
            finally
                try stdin.Dispose() with _ -> ())

    let start () =
        let info =
            if setsid then ProcessStartInfo("/usr/bin/setsid", [| "/bin/sh"; "-c"; command |])
            else ProcessStartInfo("/bin/sh", [| "-c"; command |])
        info.RedirectStandardInput <- true
        info.RedirectStandardOutput <- true
        info.RedirectStandardError <- true
        info.UseShellExecute <- false
        let p = Process.Start info
        let queue = Queue<Item>()
        lock queue (fun () ->
            replies <- queue
            queuedBytes <- 0L
            stdoutEnded <- false)
        writeFailed <- false
        sent <- 0L
        received <- 0L
        writes <- new BlockingCollection<byte[]>()
        proc <- p
        startReader p queue
        startStderr p
        startWriter p writes

    let killGroup () =
        try
            if not (isNull proc) then
                // setsid made the shell a session (and group) leader: its pid is the group's id.
                if setsid then Native.kill(-proc.Id, 9) |> ignore
                if not proc.HasExited then proc.Kill true
                proc.WaitForExit 2000 |> ignore
        with _ -> ()

    do start ()

    /// The shell command.
    member _.Command = command

    /// How many times the port was (re)started.
    member val Starts = 1 with get, set

    /// Requests sent since the port last started (its lifetime so far).
    member _.Sent = sent

    /// Queues one request line for the writer thread; false once writing to the port failed.
    member _.Send(line: string) =
        if writeFailed then false
        else
            sent <- sent + 1L
            let bytes = utf8.GetBytes(line + "\n")
            try
                writes.Add bytes
                true
            with :? InvalidOperationException -> false

    /// The next reply line, waiting at most `timeoutMs`.
    member _.Receive(timeoutMs: int) : Received =
        let queue = replies
        let timeoutMs = if received = 0L then max timeoutMs PortLimits.StartupGraceMs else timeoutMs
        let deadline = Stopwatch.StartNew()
        let taken =
            lock queue (fun () ->
                let mutable item = None
                let mutable waiting = true
                while waiting do
                    if queue.Count > 0 then
                        let x = queue.Dequeue()
                        (match x with ItemLine(_, n) -> queuedBytes <- queuedBytes - n | _ -> ())
                        Monitor.PulseAll queue
                        item <- Some x
                        waiting <- false
                    else
                        let left = int64 timeoutMs - deadline.ElapsedMilliseconds
                        if stdoutEnded || left <= 0L then waiting <- false
                        else Monitor.Wait(queue, int left) |> ignore
                item)
        if taken.IsSome then received <- received + 1L
        match taken with
        | Some(ItemLine(s, _)) -> Line s
        | Some(ItemOverlong(n, start)) -> Overlong(n, start)
        | None when stdoutEnded ->
            // Let the process finish exiting so that its code is known.
            let exited = proc.WaitForExit 2000
            Closed(if exited then Some proc.ExitCode else None)
        | None -> TimedOut proc.HasExited

    /// Reply lines that arrived and were not taken (after waiting up to `waitMs` for one).
    member _.Unread(waitMs: int) =
        let queue = replies
        lock queue (fun () ->
            if queue.Count = 0 && waitMs > 0 && not stdoutEnded then Monitor.Wait(queue, waitMs) |> ignore
            queue.Count)

    /// The last lines the port wrote to stderr (bounded).
    member _.StderrTail =
        lock gate (fun () -> String.Join("\n", stderrTail))

    /// Kills the port's process group and starts a fresh one.
    member this.Restart() =
        this.Stop()
        lock gate (fun () -> stderrTail.Clear())
        start ()
        this.Starts <- this.Starts + 1

    member _.Stop() =
        try writes.CompleteAdding() with _ -> ()
        killGroup ()
        try proc.Dispose() with _ -> ()

    interface IDisposable with
        member this.Dispose() = this.Stop()
