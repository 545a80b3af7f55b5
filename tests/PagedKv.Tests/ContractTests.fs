/// Contract edges of the public API that random histories do not reach: null arguments, the
/// free-block policy's notifications, limits at their exact bounds, disposed and lost
/// sequences, the device-copy seam's own checks.
module PagedKv.Tests.ContractTests

open System
open System.Collections.Generic
open System.Reflection
open Xunit
open FsCheck
open ILGPU
open ILGPU.Runtime
open PagedKv
open PagedKv.Allocation
open PagedKv.Hashing
open PagedKv.Sequences
open PagedKv.Protocol
open PagedKv.Verification

/// A policy that keeps its own record of which free blocks have a hash, from the allocator's
/// notifications alone (Release's flag, HashDropped), and checks it against the allocator's
/// hash state whenever the allocator validates: what an O(1) policy relies on.
type CheckingPolicy(inner: IFreeBlockPolicy) =
    let hashedFree = HashSet<int>()
    interface IFreeBlockPolicy with
        member _.Count = inner.Count
        member _.Order = inner.Order
        member _.Plan(taken, blocks) = inner.Plan(taken, blocks)
        member _.Reset c = hashedFree.Clear(); inner.Reset c
        member _.Release(b, hasHash) =
            if hasHash then hashedFree.Add b |> ignore
            inner.Release(b, hasHash)
        member _.HashDropped b =
            if not (hashedFree.Remove b) then failwithf "HashDropped(%d) for a block the policy holds as unhashed" b
            inner.HashDropped b
        member _.Take b = hashedFree.Remove b |> ignore; inner.Take b
        member _.TakeForAllocation() =
            let b = inner.TakeForAllocation()
            hashedFree.Remove b |> ignore
            b
        member _.Inconsistency hasHash =
            inner.Order
            |> Seq.tryFind (fun b -> hasHash.Invoke b <> hashedFree.Contains b)
            |> Option.map (fun b -> sprintf "free block %d: allocator says hashed=%b, notifications said %b" b (hasHash.Invoke b) (hashedFree.Contains b))
            |> Option.defaultWith (fun () -> inner.Inconsistency hasHash)

[<Fact>]
let ``the allocator tells its policy every change of a free block's hash state`` () =
    let makeSut p c = new ReferenceSut(p, c, (fun p -> CheckingPolicy(Convert.policy p) :> IFreeBlockPolicy), None) :> ISut
    let r = Campaign.run makeSut History.arb (int64 (40_000.0 * Settings.scale)) Settings.seed ignore
    match r.Found with
    | Some f -> failwithf "seed %d:\n%s" r.Seed f.Failure.Report
    | None -> Assert.True(r.Totals.Events.ContainsKey "register-collision")

[<Fact>]
let ``Reset forgets what the policy held`` () =
    for p in [ LifoPreferUnhashed() :> IFreeBlockPolicy; Lru() ] do
        p.Reset 3
        p.TakeForAllocation() |> ignore
        p.Release(0, true)
        p.Reset 2
        Assert.Equal<int>([ 1; 0 ], p.Order)
        Assert.Equal(2, p.Count)

[<Fact>]
let ``null arguments are ArgumentNullException`` () =
    let acc = Accelerators.Cpu
    Assert.Throws<ArgumentNullException>(fun () -> BlockAllocator(1, null) |> ignore) |> ignore
    Assert.Throws<ArgumentNullException>(fun () -> new PagedSeqState(null, 1, 1) |> ignore) |> ignore
    use s = new PagedSeqState(acc, 1, 1)
    Assert.Throws<ArgumentNullException>(fun () -> s.EnsureCapacity(null, 1) |> ignore) |> ignore
    Assert.Throws<ArgumentNullException>(fun () -> s.Release null) |> ignore

[<Fact>]
let ``TryGetBlockHash and Generation reject an id outside the pool`` () =
    let a = BlockAllocator(2)
    for b in [ -1; 2 ] do
        let e = Assert.Throws<PagedKvException>(fun () -> a.TryGetBlockHash b |> ignore)
        Assert.Equal(Fault.BlockOutOfRange, e.Fault)
        Assert.Equal(Fault.BlockOutOfRange, Assert.Throws<PagedKvException>(fun () -> a.Generation b |> ignore).Fault)

[<Fact>]
let ``block sizes and table sizes are accepted exactly on [1, limit]`` () =
    let acc = Accelerators.Cpu
    let tokens = [| 1u; 2u; 3u |]
    Assert.Empty(BlockHasher.BlockHashChain(ReadOnlySpan tokens, Limits.MaxBlockSize))
    Assert.Throws<PagedKvException>(fun () -> BlockHasher.BlockHashChain(ReadOnlySpan tokens, Limits.MaxBlockSize + 1) |> ignore) |> ignore
    use a = new PagedSeqState(acc, Limits.MaxBlockSize, 1)
    use b = new PagedSeqState(acc, 1, Limits.MaxBlocksPerSeq)
    Assert.Equal(Limits.MaxBlocksPerSeq, b.MaxBlocksPerSeq)

let private everyOp (s: PagedSeqState) (a: BlockAllocator) : (string * (unit -> unit)) list =
    [ "EnsureCapacity", (fun () -> s.EnsureCapacity(a, 1) |> ignore)
      "AppendBlocks", (fun () -> s.AppendBlocks(ReadOnlySpan [| 0 |], fun () -> ()))
      "SetLen", (fun () -> s.SetLen 0)
      "AdvanceLen", (fun () -> s.AdvanceLen 0)
      "SyncContextLen", (fun () -> s.SyncContextLen())
      "Release", (fun () -> s.Release a) ]

[<Fact>]
let ``a disposed sequence refuses every operation`` () =
    let a = BlockAllocator(4)
    let s = new PagedSeqState(Accelerators.Cpu, 1, 4)
    s.Dispose()
    for name, op in everyOp s a do
        Assert.Throws<ObjectDisposedException>(op) |> ignore
        Assert.Equal(4, a.FreeCount)
    Assert.Throws<ObjectDisposedException>(fun () -> s.ReadDevice() |> ignore) |> ignore

/// Device copies that fail from the n-th on.
type FailFrom(n: int) =
    let mutable i = -1
    interface IDeviceCopies with
        member _.CopyToDevice(source: ReadOnlySpan<uint>, target: ArrayView<uint>) =
            i <- i + 1
            if i >= n then raise (DeviceFaultException "scripted")
            DirectCopies.Instance.CopyToDevice(source, target)

[<Fact>]
let ``a sequence whose mirror was lost refuses every operation`` () =
    let a = BlockAllocator(4)
    use s = new PagedSeqState(Accelerators.Cpu, 1, 4, FailFrom 2)
    s.EnsureCapacity(a, 1) |> ignore // copy 0
    let lost = Assert.Throws<DeviceMirrorLostException>(fun () -> s.Release a) // 1 ok, 2 fails, undo fails
    Assert.Contains("undoing", lost.Message)
    Assert.Equal(2, (lost.InnerException :?> AggregateException).InnerExceptions.Count)
    for name, op in everyOp s a do
        let e = Assert.Throws<InvalidOperationException>(op)
        Assert.Contains("mirror was lost", e.Message)

let private violated (name: string) (s: PagedSeqState) =
    let e = Assert.Throws<InvariantViolationException>(fun () -> s.Validate())
    Assert.Equal(name, e.Invariant)
    Assert.Matches(sprintf @"^invariant %s violated: .*\d" name, e.Message)

[<Fact>]
let ``Validate reports each broken host bound`` () =
    let a = BlockAllocator(4)
    let len = typeof<PagedSeqState>.GetField("<Len>k__BackingField", BindingFlags.NonPublic ||| BindingFlags.Instance)
    use s = new PagedSeqState(Accelerators.Cpu, 2, 1)
    s.EnsureCapacity(a, 2) |> ignore
    len.SetValue(s, -1)
    violated SequenceInvariants.HostBounds s
    len.SetValue(s, 3)
    violated SequenceInvariants.HostBounds s
    len.SetValue(s, 0)
    s.Validate()
    (typeof<PagedSeqState>.GetField("blocks", BindingFlags.NonPublic ||| BindingFlags.Instance).GetValue s :?> List<int>).Add 3
    violated SequenceInvariants.HostBounds s

[<Fact>]
let ``Validate reports a device that drifted, naming the entry`` () =
    let a = BlockAllocator(4)
    use s = new PagedSeqState(Accelerators.Cpu, 1, 4)
    s.EnsureCapacity(a, 2) |> ignore
    s.DeviceBlockTable.SubView(3, 1).CopyFromCPU([| 9u |])
    violated SequenceInvariants.TableMirror s
    s.DeviceBlockTable.SubView(3, 1).CopyFromCPU([| 0u |])
    s.DeviceContextLen.CopyFromCPU([| 1u |])
    violated SequenceInvariants.LengthMirror s

[<Fact>]
let ``direct copies check lengths and report accelerator errors as device faults`` () =
    let acc = Accelerators.Cpu
    use buffer = acc.Allocate1D<uint32>(2L)
    let e = Assert.Throws<ArgumentException>(fun () -> DirectCopies.Instance.CopyToDevice(ReadOnlySpan [| 1u |], buffer.View.AsContiguous()))
    Assert.Contains("copy of 1 values into a view of 2", e.Message)
    let e = Assert.Throws<DeviceFaultException>(fun () -> DirectCopies.Instance.CopyToDevice(ReadOnlySpan<uint32>.Empty, ArrayView<uint32>()))
    Assert.IsType<InvalidOperationException>(e.InnerException) |> ignore
    Assert.Contains(e.InnerException.Message, e.Message)

[<Fact>]
let ``planning after resurrections refuses blocks that are live or listed twice`` () =
    let a = BlockAllocator(4)
    a.TryAllocateN 2 |> ignore
    a.RegisterBlockHash(1, 7UL)
    a.Free(ReadOnlySpan [| 1 |])
    for listed in [ [| 0 |]; [| 1; 1 |] ] do
        let e = Assert.Throws<ArgumentException>(fun () -> a.TryPlanAllocation(ReadOnlySpan listed, 1) |> ignore)
        Assert.Contains("is not a soft-free block listed once", e.Message)
    Assert.Equal(PagedKv.Fault.BlockOutOfRange, Assert.Throws<PagedKvException>(fun () -> a.TryPlanAllocation(ReadOnlySpan [| 4 |], 1) |> ignore).Fault)
    Assert.Equal(PagedKv.Fault.CountOutOfRange, Assert.Throws<PagedKvException>(fun () -> a.TryPlanAllocation(ReadOnlySpan [| 1 |], -1) |> ignore).Fault)
    // Block 1 resurrected leaves 2 and 3: three blocks are not there.
    Assert.Equal<int[]>([| 2; 3 |], snd (a.TryPlanAllocation(ReadOnlySpan [| 1 |], 2)))
    Assert.False(fst (a.TryPlanAllocation(ReadOnlySpan [| 1 |], 3)))

[<Fact>]
let ``a sequence's table takes no more than max_blocks blocks`` () =
    let a = BlockAllocator(4)
    use s = new PagedSeqState(Accelerators.Cpu, 1, 2)
    let e = Assert.Throws<PagedKvException>(fun () -> s.AppendBlocks(ReadOnlySpan [| 0; 1; 2 |], fun () -> failwith "must not take"))
    Assert.Equal(PagedKv.Fault.LengthOutOfRange, e.Fault)
    Assert.Equal(3L, e.Value)
    Assert.Contains("0 + 3 blocks would pass max_blocks_per_seq=2", e.Message)
    Assert.Throws<ArgumentNullException>(fun () -> s.AppendBlocks(ReadOnlySpan [| 0 |], null)) |> ignore
    Assert.Empty(s.Blocks)

[<Fact>]
let ``a cached block shared as often as a block can be is not reused again`` () =
    let a = BlockAllocator(8)
    use c = new PagedKv.Prefix.PrefixCache(a, Accelerators.Cpu, 1, 4)
    c.Admit(0, ReadOnlySpan [| 5u; 6u |], 0UL) |> ignore
    c.Append(0, ReadOnlySpan [| 5u; 6u |]) |> ignore
    let cached = c.Sequence(0).Blocks[0]
    a.AcquireMany(ReadOnlySpan(Array.create (Limits.MaxRefCount - 1) cached))
    Assert.Equal(Limits.MaxRefCount, a.RefCount cached)
    let r = c.Admit(1, ReadOnlySpan [| 5u; 6u |], 0UL)
    Assert.Equal(0, r.ComputedTokens)
    Assert.DoesNotContain(cached, c.Sequence(1).Blocks)
