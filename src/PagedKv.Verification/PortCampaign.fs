/// `check`'s campaign: histories through a port in seeded batches until an op budget is spent or
/// a divergence is found; then the divergence shrunk against the port within a time budget and
/// confirmed on a fresh port process, so that the report says what the port really does:
/// - the failing history is handed to `onFirstFailure` before shrinking (written to --repro);
/// - every shrink candidate runs on a port that no reply in flight can reach (PortCheck.run
///   restarts the port after a divergence);
/// - a failing history counts only when it fails again on a fresh port (rerun at once), so a port
///   that fails late in its lifetime cannot mislead the shrinker; the history reported fails on a
///   fresh port, or the report says why none does.
module PagedKv.Verification.PortCampaign

open System
open System.Diagnostics
open FsCheck
open FsCheck.FSharp

/// What the confirmation on fresh ports found.
type Verdict =
    /// The shrunk history fails on a fresh port.
    | Reproduced
    /// Shrinking stopped at its time budget: the smallest history so far, which fails on a fresh port.
    | ShrinkBudgetSpent
    /// The history as first found passes twice on fresh ports: it failed at this request of the
    /// port's lifetime (counted from its start, hello included).
    | DependsOnLifetime of failedAtRequest: int64
    /// The history as first found passed on one fresh port and failed on another (after it had
    /// failed on the port it was first run on).
    | NotDeterministic

type Found =
    { History: History
      /// The divergence reported (from the confirming run when there was one).
      Failure: Differential.Failure
      /// The divergence as first found, before shrinking.
      FirstFailure: Differential.Failure
      Verdict: Verdict
      /// Ops that ran, over all histories, before the first diverging one.
      OpsBeforeFirst: int64
      Shrinks: int
      ShrinkTime: TimeSpan
      /// FsCheck's replay seed of the failing batch.
      Replay: string }

type Outcome =
    | Passed
    | Diverged of Found
    /// A checker-internal error: the exception and the requests of the history that was running.
    | Internal of exn * string list

type Result =
    { Seed: uint64
      Totals: Differential.Totals
      Elapsed: TimeSpan
      Outcome: Outcome }

    member r.OpsPerSecond = float r.Totals.Ops / max r.Elapsed.TotalSeconds 1e-9

type Settings =
    { Ops: int64
      Seed: uint64
      ShrinkTimeout: TimeSpan
      OnFirstFailure: Differential.Failure -> unit
      OnBatch: Differential.Totals -> unit }

/// The failure a checker-internal error became (PortCheck.run reports it so, with the requests sent).
let isInternal (f: Differential.Failure) = f.Reason.StartsWith PortCheck.InternalErrorTag

type private Search(port: PortProcess, opts: PortCheck.Options, settings: Settings, totals: Differential.Totals) =
    /// The history as first found, its failure, the ops before it, and the request of the port's
    /// lifetime it failed at.
    member val First: (History * Differential.Failure * int64 * int64) option = None with get, set
    /// The smallest history that failed on a fresh port, and that failure.
    member val Smallest: (History * Differential.Failure) option = None with get, set
    /// The first history failed, then passed on a fresh port: nothing to shrink.
    member val PassedFresh = false with get, set
    member val Internal: Differential.Failure option = None with get, set
    member val Shrinks = 0 with get, set
    member val ShrinkClock = Stopwatch() with get
    member x.Spent = x.First.IsSome && x.ShrinkClock.Elapsed > settings.ShrinkTimeout
    member private x.Done = x.Spent || x.Internal.IsSome || x.PassedFresh

    /// Runs h; a failure is confirmed at once on a fresh port (PortCheck.run restarted it), so
    /// that only a history that fails from the port's start counts. The fresh failure, if any.
    member private x.RunConfirmed(h: History, first: bool) =
        let lifetime = port.Sent
        let r = PortCheck.run port opts h
        if first then totals.Add r
        match r.Failure with
        | None -> None
        | Some f when isInternal f -> x.Internal <- Some f; None
        | Some f ->
            if first then
                x.First <- Some(h, f, totals.Ops - int64 r.Ops + int64 f.Step - 1L, lifetime + int64 f.Protocol.Length)
                settings.OnFirstFailure f
                x.ShrinkClock.Start()
            match (PortCheck.run port opts h).Failure with
            | Some f' when isInternal f' -> x.Internal <- Some f'; None
            | Some f' -> Some f'
            | None -> (if first then x.PassedFresh <- true); None

    /// The property FsCheck checks and shrinks: the history passes. Once shrinking is over (its
    /// budget spent, an internal error, nothing to shrink) every candidate passes unrun.
    member x.Property(h: History) =
        if x.Done then true
        else
            match x.RunConfirmed(h, x.First.IsNone) with
            // A candidate that does not fail fresh counts as passing; a first failure that passed
            // fresh ends the batch (nothing to shrink: every later call passes unrun).
            | None -> not x.PassedFresh
            | Some f ->
                if x.Smallest.IsSome then x.Shrinks <- x.Shrinks + 1
                x.Smallest <- Some(h, f)
                false

/// Runs h on a freshly started port: its failure, if any.
let private fresh (port: PortProcess) (opts: PortCheck.Options) (h: History) =
    port.Restart()
    (PortCheck.run port opts h).Failure |> Option.filter (isInternal >> not)

/// The history to report, its failure and the verdict.
let private conclude (port: PortProcess) (opts: PortCheck.Options) (search: Search) : History * Differential.Failure * Verdict =
    let h0, f0, _, failedAt = search.First.Value
    match search.Smallest with
    | Some(hs, fs) -> hs, fs, (if search.Spent then ShrinkBudgetSpent else Reproduced)
    | None ->
        // It failed once and passed on a fresh port: once more on another fresh port.
        match fresh port opts h0 with
        | Some f -> h0, f, NotDeterministic
        | None -> h0, f0, DependsOnLifetime failedAt

let private batchSize = 100

/// FsCheck prints nothing: the outcome is in the Search.
type private Silent() =
    interface IRunner with
        member _.OnStartFixture _ = ()
        member _.OnArguments(_, _, _) = ()
        member _.OnShrink(_, _) = ()
        member _.OnFinished(_, _) = ()

/// One FsCheck check of `histories` histories; true when it found a divergence or an internal error.
let private checkBatch (arb: Arbitrary<History>) (search: Search) (rnd: Rnd) =
    let config = Config.Quick.WithMaxTest(batchSize).WithReplay(Some { Rnd = rnd; Size = None }).WithRunner(Silent())
    try Check.One(config, Prop.forAll arb search.Property) with _ -> ()
    search.First.IsSome || search.Internal.IsSome

/// Runs the campaign. Never throws for anything a port does; a checker-internal error is an outcome.
let run (port: PortProcess) (opts: PortCheck.Options) (arb: Arbitrary<History>) (settings: Settings) : Result =
    let totals = Differential.Totals()
    let clock = Stopwatch.StartNew()
    let search = Search(port, opts, settings, totals)
    let mutable batch = 0UL
    let mutable replay = ""
    let mutable stop = false
    while not stop && totals.Ops < settings.Ops do
        let rnd = Rnd(settings.Seed + batch * 0x9E3779B97F4A7C15UL)
        replay <- sprintf "(%d,%d)" rnd.Seed rnd.Gamma
        stop <- checkBatch arb search rnd
        batch <- batch + 1UL
        settings.OnBatch totals
    let outcome =
        match search.Internal, search.First with
        | Some f, _ -> Internal(Exception(f.Reason.Substring PortCheck.InternalErrorTag.Length), f.Protocol)
        | None, Some(_, f0, opsBefore, _) ->
            let shrinkTime = search.ShrinkClock.Elapsed
            let h, f, verdict = conclude port opts search
            Diverged
                { History = h; Failure = f; FirstFailure = f0; Verdict = verdict; OpsBeforeFirst = opsBefore
                  Shrinks = search.Shrinks; ShrinkTime = shrinkTime; Replay = replay }
        | None, None -> Passed
    { Seed = settings.Seed; Totals = totals; Elapsed = clock.Elapsed; Outcome = outcome }
