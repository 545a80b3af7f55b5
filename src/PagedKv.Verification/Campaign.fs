/// The verification campaign: the differential property run in seeded batches of histories
/// until an operation budget is spent, outside any test framework (the CLI's `verify`).
/// Deterministic: the same seed and budget replay the same histories.
module PagedKv.Verification.Campaign

open System
open System.Diagnostics
open FsCheck
open FsCheck.FSharp

/// Histories per FsCheck run; each batch has its own seed derived from the campaign's.
[<Literal>]
let BatchSize = 100

type Found =
    { /// FsCheck's replay seed of the failing batch: `[<Property(Replay = "(s,g)")>]`.
      Replay: string
      Shrunk: History
      Failure: Differential.Failure }

type Result =
    { Seed: uint64
      Totals: Differential.Totals
      Elapsed: TimeSpan
      Found: Found option }

    member r.OpsPerSecond = float r.Totals.Ops / max r.Elapsed.TotalSeconds 1e-9

type private Capture() =
    let mutable result = None
    member _.Result = result

    interface IRunner with
        member _.OnStartFixture _ = ()
        member _.OnArguments(_, _, _) = ()
        member _.OnShrink(_, _) = ()
        member _.OnFinished(_, r) = result <- Some r

/// Runs one FsCheck check of `runHistory` over `histories` histories from `rnd`; on failure
/// returns the shrunk history and its divergence (run once more to report it; if it then passes
/// — a non-deterministic system under test — the failure as first found).
let checkWith (runHistory: History -> Differential.RunResult) (arb: Arbitrary<History>) (totals: Differential.Totals) (rnd: Rnd) (histories: int) : Found option =
    let capture = Capture()
    let config =
        Config.Quick.WithMaxTest(histories).WithReplay(Some { Rnd = rnd; Size = None }).WithRunner(capture)
    let mutable first = None
    let property (h: History) =
        let r = runHistory h
        totals.Add r
        match r.Failure with
        | None -> Prop.ofTestable true
        | Some f ->
            if first.IsNone then first <- Some(h, f)
            Prop.label f.Report (Prop.ofTestable false)
    Check.One(config, Prop.forAll arb property)
    match capture.Result with
    | Some(TestResult.Failed(_, _, shrunk, _, _, _, _)) ->
        let h = shrunk |> List.head :?> History
        match (runHistory h).Failure with
        | Some f -> Some { Replay = sprintf "(%d,%d)" rnd.Seed rnd.Gamma; Shrunk = h; Failure = f }
        | None ->
            let h, f = first.Value
            Some { Replay = sprintf "(%d,%d)" rnd.Seed rnd.Gamma; Shrunk = h; Failure = { f with Reason = f.Reason + "\n(the shrunk history passed when run again: the system under test is not deterministic; this is the failure as first found)" } }
    | Some(TestResult.Passed _) -> None
    | other -> failwithf "FsCheck ended unexpectedly: %A" other

/// Runs one FsCheck check of the differential property against `makeSut`.
let check (makeSut: MakeSut) (arb: Arbitrary<History>) (totals: Differential.Totals) (rnd: Rnd) (histories: int) : Found option =
    checkWith (Differential.run makeSut) arb totals rnd histories

/// Runs batches of `runHistory` until at least `ops` operations were checked or a divergence is found.
let runWith (runHistory: History -> Differential.RunResult) (arb: Arbitrary<History>) (ops: int64) (seed: uint64) (onBatch: Differential.Totals -> unit) : Result =
    let totals = Differential.Totals()
    let clock = Stopwatch.StartNew()
    let mutable found = None
    let mutable batch = 0UL
    while found.IsNone && totals.Ops < ops do
        found <- checkWith runHistory arb totals (Rnd(seed + batch * 0x9E3779B97F4A7C15UL)) BatchSize
        batch <- batch + 1UL
        onBatch totals
    { Seed = seed; Totals = totals; Elapsed = clock.Elapsed; Found = found }

/// Runs batches until at least `ops` operations were checked or a divergence is found.
let run (makeSut: MakeSut) (arb: Arbitrary<History>) (ops: int64) (seed: uint64) (onBatch: Differential.Totals -> unit) : Result =
    runWith (Differential.run makeSut) arb ops seed onBatch
