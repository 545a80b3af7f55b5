/// Debug builds of the reference assert their invariants after every mutation (Debug.Assert).
/// .NET's default for a failed assertion is to end the process; a differential run must instead
/// see an exception, report it as a divergence and shrink it. `install` replaces the trace
/// listeners with one that throws; the reference system under test installs it when it is
/// created, and `verify` at its start. (Never assert inside an ILGPU kernel: on a CPU-kernel
/// thread the exception cannot reach the run.)
module PagedKv.Verification.Assertions

open System.Diagnostics

/// A failed Debug.Assert, as an exception.
exception AssertionFailed of message: string

type private ThrowingListener() =
    inherit TraceListener()
    override _.Write(_: string) = ()
    override _.WriteLine(_: string) = ()
    override _.Fail(message: string, detail: string) =
        raise (AssertionFailed(sprintf "Debug.Assert failed: %s %s" message detail))

let private gate = obj ()

/// Makes every failed Debug.Assert in this process throw AssertionFailed (idempotent).
let install () =
    lock gate (fun () ->
        let installed = Trace.Listeners |> Seq.cast<TraceListener> |> Seq.exists (fun l -> l :? ThrowingListener)
        if not installed then
            Trace.Listeners.Clear()
            Trace.Listeners.Add(new ThrowingListener()) |> ignore)
