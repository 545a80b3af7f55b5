/// The stateful differential suite: the C# reference implementation against the F# spec.
module PagedKv.Tests.DifferentialTests

open Xunit
open Xunit.Abstractions
open FsCheck
open FsCheck.Xunit
open PagedKv.Verification

/// Events every default run must contain, so that the suite exercises each error kind and
/// each prefix-cache path (hit, resurrection, re-registration, collision).
let requiredEvents =
    [ "fault:CapacityOutOfRange"; "fault:CountOutOfRange"; "fault:BlockOutOfRange"
      "fault:FreeOfFreeBlock"; "fault:AcquireOfFreeBlock"; "fault:RegisterOnFreeBlock"
      "fault:RefCountOverflow"; "exhausted"; "hash-miss"; "hash-hit-live"; "hash-resurrect"
      "register-new"; "register-same"; "register-replace"; "register-collision"
      "allocate-with-soft-free"; "acquire-bulk" ]

/// Runs a campaign of at least `budget` ops and requires: no divergence, the budget reached,
/// ≥ 15 % invalid ops, and (at full size) every one of `required` events generated. Prints the figures.
let checkCampaign (output: ITestOutputHelper) (name: string) makeSut arb (budget: int64) (required: string list) =
    let r = Campaign.run makeSut arb budget Settings.seed ignore
    output.WriteLine(
        sprintf "%s, seed %d: %d histories, %d ops (%.1f%% invalid) in %.1fs, %.0f ops/s"
            name r.Seed r.Totals.Histories r.Totals.Ops (100.0 * r.Totals.InvalidShare) r.Elapsed.TotalSeconds r.OpsPerSecond)
    for KeyValue(k, v) in r.Totals.Events do
        output.WriteLine(sprintf "  %-28s %d" k v)
    match r.Found with
    | Some f -> failwithf "divergence in %s (PAGEDKV_SEED=%d, Replay %s)\n%s" name r.Seed f.Replay f.Failure.Report
    | None -> ()
    Assert.True(r.Totals.Ops >= budget)
    Assert.True(r.Totals.InvalidShare >= 0.15, sprintf "only %.1f%% invalid ops" (100.0 * r.Totals.InvalidShare))
    // A full-size run must reach every event; a scaled-down one (the mutation gate's) need not.
    if Settings.scale >= 1.0 then
        let missing = required |> List.filter (fun e -> not (r.Totals.Events.ContainsKey e))
        Assert.True(missing.IsEmpty, sprintf "events never generated: %A" missing)

type Campaign(output: ITestOutputHelper) =
    [<Fact>]
    member _.``reference implementation equals the spec on random histories``() =
        checkCampaign output "allocator" Differential.reference History.arb Settings.opBudget requiredEvents

/// The same property as an FsCheck property: paste a reported "(seed,gamma)" into Replay here.
[<Settings.ScaledProperty(Campaign.BatchSize, Arbitrary = [| typeof<HistoryArb> |])>]
let ``reference implementation equals the spec (replayable property)`` (h: History) =
    Differential.property Differential.reference (Differential.Totals()) h
