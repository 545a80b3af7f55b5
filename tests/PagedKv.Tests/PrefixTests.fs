/// The prefix cache (src/PagedKv/Prefix): the stateful differential suite over serving histories
/// — tenants sharing system prompts, multi-turn conversations, both policies, exhaustion,
/// preemption, device faults, and hashes reduced to a few values so that lookups meet collisions —
/// with an oracle that checks every reused block against what was written into it; and the
/// cache's contract edges.
module PagedKv.Tests.PrefixTests

open System
open Xunit
open Xunit.Abstractions
open FsCheck
open FsCheck.FSharp
open PagedKv
open PagedKv.Allocation
open PagedKv.Prefix
open PagedKv.Protocol
open PagedKv.Sequences
open PagedKv.Verification
open ILGPU
open ILGPU.Runtime

/// Events every full-size run must contain.
let requiredEvents =
    [ "req-hit"; "req-admit-cold"; "req-refused"; "req-append-refused"; "req-collision-met"; "reuse-checked"; "ReqFinish"; "ReqPreempt"
      "device-fault"; "fault:SequenceExists"; "fault:UnknownSequence"; "fault:LengthOutOfRange" ]

let private budget = int64 (40_000.0 * Settings.scale)

/// Histories whose prefix cache always reduces hashes to `distinct` values.
let private colliding (distinct: int) =
    let gen =
        History.genWithRequests
        |> Gen.map (fun h -> { h with Ops = h.Ops |> List.map (function GPrefixNew(bs, mb, _) -> GPrefixNew(bs, mb, distinct) | op -> op) })
    Arb.fromGenShrink (gen, History.shrink)

let private report (output: ITestOutputHelper) (name: string) (r: Campaign.Result) =
    let get k = r.Totals.Events.TryFind k |> Option.defaultValue 0L
    output.WriteLine(
        sprintf "%s, seed %d: %d histories, %d ops, %d admissions reusing blocks, %d prefix lookups, %d collisions met (wrong reuses prevented), %d reused blocks checked by the oracle: 0 wrong, 0 cross-salt"
            name r.Seed r.Totals.Histories r.Totals.Ops (get "req-hit") (get "prefix-lookups") (get "prefix-collisions") (get "reuse-checked"))

[<Collection("device")>]
type PrefixCampaign(output: ITestOutputHelper) =
    [<Fact>]
    member _.``the prefix cache equals its spec on serving histories; no reused block holds other content``() =
        DifferentialTests.checkCampaign output "prefix cache on the CPU accelerator" (Differential.referenceOn Accelerators.Cpu)
            History.arbWithRequests budget requiredEvents

    [<Fact>]
    member _.``with every block hashed to one of 2 values, collisions are met and never reused``() =
        let r = Campaign.run (Differential.referenceOn Accelerators.Cpu) (colliding 2) budget Settings.seed ignore
        report output "hashes reduced to 2 values" r
        match r.Found with
        | Some f -> failwithf "seed %d:\n%s" r.Seed f.Failure.Report
        | None -> ()
        Assert.True(r.Totals.Events.TryFind "prefix-collisions" |> Option.exists (fun c -> c > 0L), "no collision was met")
        Assert.True(r.Totals.Events.TryFind "reuse-checked" |> Option.exists (fun c -> c > 0L), "no block was reused")

let private acc () = Accelerators.Cpu

[<Collection("device")>]
type PrefixContract() =
    [<Fact>]
    member _.``construction checks its arguments, exactly at the limits``() =
        let a = BlockAllocator(8)
        Assert.Throws<ArgumentNullException>(fun () -> new PrefixCache(null, acc (), 4, 4) |> ignore) |> ignore
        Assert.Throws<ArgumentNullException>(fun () -> new PrefixCache(a, null, 4, 4) |> ignore) |> ignore
        for bs, mb, fault, text in
            [ 0, 4, Fault.BlockSizeOutOfRange, "block_size=0 is outside [1, 65536]"
              Limits.MaxBlockSize + 1, 4, Fault.BlockSizeOutOfRange, "block_size=65537 is outside [1, 65536]"
              4, 0, Fault.MaxBlocksOutOfRange, "max_blocks_per_seq=0 is outside [1, 1048576]"
              4, Limits.MaxBlocksPerSeq + 1, Fault.MaxBlocksOutOfRange, "max_blocks_per_seq=1048577 is outside [1, 1048576]" ] do
            let e = Assert.Throws<PagedKvException>(fun () -> new PrefixCache(a, acc (), bs, mb) |> ignore)
            Assert.Equal(fault, e.Fault)
            Assert.Equal(text, e.Message)
        use widest = new PrefixCache(a, acc (), Limits.MaxBlockSize, Limits.MaxBlocksPerSeq)
        Assert.Equal(Limits.MaxBlocksPerSeq, widest.MaxBlocksPerSeq)
        use narrowest = new PrefixCache(a, acc (), 1, 1)
        Assert.Equal((1, 1), (narrowest.BlockSize, narrowest.MaxBlocksPerSeq))
        Assert.Throws<ArgumentOutOfRangeException>(fun () -> CollidingHasher(0) |> ignore) |> ignore
        Assert.Equal(3, CollidingHasher(3).Distinct)

    [<Fact>]
    member _.``request ids and lengths are accepted exactly up to their limits``() =
        let a = BlockAllocator(8)
        use c = new PrefixCache(a, acc (), 2, 3)
        Assert.True(c.Admit(Limits.MaxSequenceId, ReadOnlySpan(Array.create 6 1u), 0UL).Admitted) // 3 blocks of 2: exactly full
        let e = Assert.Throws<PagedKvException>(fun () -> c.Append(Limits.MaxSequenceId, ReadOnlySpan(Array.create 7 1u)) |> ignore)
        Assert.Equal("request of 7 tokens is longer than a sequence holds (3 blocks × 2)", e.Message)
        let e = Assert.Throws<PagedKvException>(fun () -> c.Admit(0, ReadOnlySpan(Array.create 7 1u), 0UL) |> ignore)
        Assert.Equal("prompt of 7 tokens is longer than a sequence holds (3 blocks × 2)", e.Message)
        let e = Assert.Throws<PagedKvException>(fun () -> c.Finish(Limits.MaxSequenceId + 1))
        Assert.Equal("request id 65537 is outside [0, 65536]", e.Message)
        Assert.Equal("no request 5", Assert.Throws<PagedKvException>(fun () -> c.Finish 5).Message)

    [<Fact>]
    member _.``sequences go through the given copy seam and are kept for reuse, and Dispose releases them all``() =
        let a = BlockAllocator(8)
        let arm = FaultArm()
        let c = new PrefixCache(a, acc (), 2, 4, null, fun () -> SeamCopies(arm) :> IDeviceCopies)
        arm.Arm 0
        Assert.Throws<DeviceFaultException>(fun () -> c.Admit(0, ReadOnlySpan [| 1u; 2u; 3u |], 0UL) |> ignore) |> ignore
        arm.Disarm()
        Assert.Equal(1, c.SpareSequences) // the sequence rented for the failed admission is back
        Assert.Equal(8, a.FreeCount)
        Assert.Empty(c.Requests)
        Assert.True(c.Admit(0, ReadOnlySpan [| 1u; 2u; 3u |], 0UL).Admitted)
        Assert.Equal(0, c.SpareSequences) // reused
        let first = c.Sequence 0
        Assert.True(c.Admit(1, ReadOnlySpan [| 4u |], 0UL).Admitted)
        let second = c.Sequence 1
        c.Finish 1
        Assert.Equal(1, c.SpareSequences)
        c.Dispose()
        Assert.Empty(c.Requests)
        Assert.Equal(0, c.SpareSequences)
        Assert.Throws<ObjectDisposedException>(fun () -> first.ReadDevice() |> ignore) |> ignore
        Assert.Throws<ObjectDisposedException>(fun () -> second.ReadDevice() |> ignore) |> ignore

    [<Fact>]
    member _.``Validate checks each request's sequence, device mirror included``() =
        let a = BlockAllocator(8)
        use c = new PrefixCache(a, acc (), 2, 4)
        c.Admit(0, ReadOnlySpan [| 1u; 2u; 3u |], 0UL) |> ignore
        c.Sequence(0).DeviceBlockTable.SubView(3, 1).CopyFromCPU([| 7u |])
        Assert.Equal(SequenceInvariants.TableMirror, Assert.Throws<InvariantViolationException>(fun () -> c.Validate()).Invariant)

    [<Fact>]
    member _.``a prefix shared by two requests is reused, and survives its request as soft-free``() =
        let a = BlockAllocator(16, Policy.Lru)
        use c = new PrefixCache(a, acc (), 2, 8)
        let prompt = [| 1u; 2u; 3u; 4u; 5u |]
        Assert.Equal(AdmitResult(true, 0, 0), c.Admit(0, ReadOnlySpan(prompt), 7UL))
        Assert.True(c.Append(0, ReadOnlySpan(prompt)).Appended)
        Assert.Equal(AdmitResult(true, 4, 0), c.Admit(1, ReadOnlySpan(prompt), 7UL)) // 2 full blocks of 2; the 5th token left to compute
        Assert.Equal<int>(c.Sequence(0).Blocks |> Seq.take 2, c.Sequence(1).Blocks |> Seq.take 2)
        Assert.Equal(AdmitResult(true, 0, 0), c.Admit(2, ReadOnlySpan(prompt), 8UL)) // another salt: nothing shared
        c.Finish 0
        c.Finish 1
        c.Finish 2
        Assert.Equal(AdmitResult(true, 4, 0), c.Admit(3, ReadOnlySpan(prompt), 7UL)) // resurrected
        Assert.Equal(3L, c.Stats.Finished)
        Assert.Equal<uint>([ 1u; 2u; 3u; 4u ], c.Tokens 3)
        Assert.Equal(7UL, c.Salt 3)
        Assert.Equal<int>([ 3 ], c.Requests)
        c.Validate()

    [<Fact>]
    member _.``an append into a partly filled block that another user freed and re-allocated is RequestBlockLost, though it does not fill it``() =
        let a = BlockAllocator(8)
        use c = new PrefixCache(a, acc (), 4, 4)
        let prompt = [| 1u; 2u; 3u; 4u; 5u |]
        Assert.True(c.Admit(0, ReadOnlySpan(prompt), 0UL).Admitted)
        Assert.True(c.Append(0, ReadOnlySpan(prompt)).Appended) // block 0 full, block 1 holds one token
        let partial = c.Sequence(0).Blocks[1]
        a.Free(ReadOnlySpan([| partial |]))
        let mutable taken = -1
        Assert.True(a.TryAllocate(&taken)) // another user takes it back (unhashed, on top of the free list)
        Assert.Equal(partial, taken)
        let before = a.Snapshot()
        let e = Assert.Throws<PagedKvException>(fun () -> c.Append(0, ReadOnlySpan([| 6u |])) |> ignore)
        Assert.Equal(Fault.RequestBlockLost, e.Fault)
        Assert.Equal(int64 partial, int64 e.Value)
        Assert.Equal<int[]>(before.RefCounts, a.Snapshot().RefCounts)
        Assert.Equal<uint>(prompt, c.Tokens 0)

    [<Fact>]
    member _.``misuse is a typed error that changes nothing``() =
        let a = BlockAllocator(8)
        use c = new PrefixCache(a, acc (), 2, 2)
        c.Admit(0, ReadOnlySpan([| 1u |]), 0UL) |> ignore
        let before = a.Snapshot()
        for f, expected in
            [ (fun () -> c.Admit(0, ReadOnlySpan([| 1u |]), 0UL) |> ignore), Fault.SequenceExists
              // Values before state: an admitted id with an empty prompt is the prompt's fault.
              (fun () -> c.Admit(0, ReadOnlySpan([||]), 0UL) |> ignore), Fault.LengthOutOfRange
              (fun () -> c.Admit(1, ReadOnlySpan([||]), 0UL) |> ignore), Fault.LengthOutOfRange
              (fun () -> c.Admit(1, ReadOnlySpan(Array.create 5 1u), 0UL) |> ignore), Fault.LengthOutOfRange
              (fun () -> c.Admit(-1, ReadOnlySpan([| 1u |]), 0UL) |> ignore), Fault.UnknownSequence
              (fun () -> c.Append(1, ReadOnlySpan([| 1u |])) |> ignore), Fault.UnknownSequence
              (fun () -> c.Append(0, ReadOnlySpan(Array.create 5 1u)) |> ignore), Fault.LengthOutOfRange
              (fun () -> c.Finish 1), Fault.UnknownSequence
              (fun () -> c.Preempt(Limits.MaxSequenceId + 1)), Fault.UnknownSequence ] do
            let e = Assert.Throws<PagedKvException>(f)
            Assert.Equal(expected, e.Fault)
            Assert.Contains(string e.Value, e.Message)
            Assert.Equal<int[]>(before.FreeList, a.Snapshot().FreeList)
            Assert.Equal<int[]>(before.RefCounts, a.Snapshot().RefCounts)
        c.Validate()

    [<Fact>]
    member _.``Validate names a request whose length and hashes disagree``() =
        let a = BlockAllocator(8)
        use c = new PrefixCache(a, acc (), 2, 4)
        c.Admit(0, ReadOnlySpan([| 1u; 2u; 3u |]), 0UL) |> ignore
        c.Append(0, ReadOnlySpan([| 1u; 2u; 3u |])) |> ignore
        c.Validate()
        c.Sequence(0).SetLen 4
        Assert.Equal(PrefixCacheInvariants.RequestBounds, Assert.Throws<InvariantViolationException>(fun () -> c.Validate()).Invariant)
        Assert.Contains("request 0: 3 tokens, len 4, 1 hashes for 1 full blocks, 2 blocks", Assert.Throws<InvariantViolationException>(fun () -> c.Validate()).Message)
        c.Sequence(0).SetLen 3
        c.Validate()
