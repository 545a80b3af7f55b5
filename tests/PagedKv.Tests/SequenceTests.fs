/// PagedSeqState: the stateful differential suite over one allocator and several sequences with
/// device buffers read back after every step, device faults injected at random steps; on ILGPU's
/// CPU accelerator always, on CUDA when a CUDA device exists.
module PagedKv.Tests.SequenceTests

open System
open Xunit
open Xunit.Abstractions
open ILGPU.Runtime
open PagedKv
open PagedKv.Allocation
open PagedKv.Sequences
open PagedKv.Protocol
open PagedKv.Verification

/// A Fact that is skipped, visibly, when no CUDA device exists.
type CudaFactAttribute() as this =
    inherit FactAttribute()
    do
        if isNull Accelerators.Cuda then
            this.Skip <- "no CUDA device on this machine (ILGPU found none): CUDA checks skipped"

/// Sequence ops every default run must contain.
let requiredEvents =
    [ "SeqNew"; "seq-grow"; "SeqSetLen"; "SeqAdvanceLen"; "SeqSync"; "seq-release-blocks"; "device-fault"
      "exhausted"; "exceeds-max-blocks"; "fault:LengthOutOfRange"; "fault:UnknownSequence"; "fault:SequenceExists"
      "fault:BlockSizeOutOfRange"; "fault:MaxBlocksOutOfRange"; "fault:FreeOfFreeBlock"; "hash-resurrect" ]

/// Sequence-campaign operations at scale 1.
let seqOpBudget = int64 (60_000.0 * Settings.scale)

let campaign (output: ITestOutputHelper) (name: string) (accelerator: ILGPU.Runtime.Accelerator) =
    DifferentialTests.checkCampaign output (sprintf "sequences on %s (%s)" name accelerator.Name)
        (Differential.referenceOn accelerator) History.arbWithSequences seqOpBudget requiredEvents

[<Collection("device")>]
type SequenceCampaign(output: ITestOutputHelper) =
    [<Fact>]
    member _.``sequences on the CPU accelerator equal the spec, device buffers included``() =
        campaign output "cpu" Accelerators.Cpu

    [<CudaFact>]
    member _.``sequences on CUDA equal the spec, device buffers included``() =
        campaign output "cuda" Accelerators.Cuda

/// Scripted copies: fail the listed copy numbers (0-based, counted over the sequence's life).
type Scripted(failing: int list) =
    let mutable n = -1
    interface IDeviceCopies with
        member _.CopyToDevice(source: ReadOnlySpan<uint>, target: ILGPU.ArrayView<uint>) =
            n <- n + 1
            if List.contains n failing then raise (DeviceFaultException(sprintf "scripted fault at copy %d" n))
            DirectCopies.Instance.CopyToDevice(source, target)

[<Collection("device")>]
type SequenceUnits(output: ITestOutputHelper) =
    let acc = Accelerators.Cpu

    [<Fact>]
    member _.``a 4096-token decode writes 4 bytes per block, not 4 x max_blocks per call (counted at the copy seam)``() =
        let blockSize, maxBlocks, tokens = 16, 256, 4096
        let a = BlockAllocator(maxBlocks)
        let seam = SeamCopies()
        use s = new PagedSeqState(acc, blockSize, maxBlocks, seam)
        // The spec's figure for the same calls.
        let mutable model = PagedKv.Spec.Allocator.create PagedKv.Spec.Allocator.LifoPreferUnhashed maxBlocks |> Result.toOption |> Option.get,
                            PagedKv.Spec.Sequence.create blockSize maxBlocks |> Result.toOption |> Option.get
        for t in 1..tokens do
            Assert.Equal(EnsureCapacityResult.Done, s.EnsureCapacity(a, t))
            model <- snd (PagedKv.Spec.Sequence.ensureCapacity t model)
        // The original writes the whole padded table on every call (paged_pool.rs ensure_capacity).
        let original = int64 tokens * 4L * int64 maxBlocks
        output.WriteLine(sprintf "decode of %d tokens, block %d, max_blocks %d: %d ensure_capacity calls moved %d bytes through the copy seam (spec: %d; original: %d bytes, %.0fx more)"
                            tokens blockSize maxBlocks tokens seam.Bytes (snd model).BytesWritten original (float original / float seam.Bytes))
        Assert.Equal((snd model).BytesWritten, seam.Bytes)
        Assert.Equal(4L * int64 (tokens / blockSize), seam.Bytes)

    [<Fact>]
    member _.``ensure_capacity copies only the new entries: 4 bytes per new block, 0 when big enough``() =
        let a = BlockAllocator(64)
        let seam = SeamCopies()
        use s = new PagedSeqState(acc, 16, 32, seam)
        Assert.Equal(EnsureCapacityResult.Done, s.EnsureCapacity(a, 40))
        Assert.Equal(12L, seam.Bytes)
        Assert.Equal(EnsureCapacityResult.Done, s.EnsureCapacity(a, 48))
        Assert.Equal(12L, seam.Bytes)
        Assert.Equal(EnsureCapacityResult.Done, s.EnsureCapacity(a, 49))
        Assert.Equal(16L, seam.Bytes)
        let struct (table, _) = s.ReadDevice()
        Assert.Equal<uint[]>(Array.append [| 0u; 1u; 2u; 3u |] (Array.zeroCreate 28), table)

    [<Fact>]
    member _.``ensure_capacity is all or nothing: exhausted and too-long requests take no block``() =
        let a = BlockAllocator(3)
        let seam = SeamCopies()
        use s = new PagedSeqState(acc, 4, 8, seam)
        let before = a.Snapshot()
        Assert.Equal(EnsureCapacityResult.PoolExhausted, s.EnsureCapacity(a, 13))
        Assert.Equal(EnsureCapacityResult.ExceedsMaxBlocks, s.EnsureCapacity(a, 33))
        Assert.Equal<int[]>(before.FreeList, a.Snapshot().FreeList)
        Assert.Empty(s.Blocks)
        Assert.Equal(0L, seam.Bytes)
        s.Validate()

    [<Fact>]
    member _.``release resets the device to a fresh sequence's state``() =
        let a = BlockAllocator(8)
        let seam = SeamCopies()
        use s = new PagedSeqState(acc, 2, 4, seam)
        s.EnsureCapacity(a, 5) |> ignore
        s.SetLen 5
        s.SyncContextLen()
        s.Release a
        let struct (table, len) = s.ReadDevice()
        Assert.Equal<uint[]>(Array.zeroCreate 4, table)
        Assert.Equal(0u, len)
        Assert.Equal(8, a.FreeCount)
        Assert.Equal(12L + 4L + 12L + 4L, seam.Bytes)

    [<Fact>]
    member _.``a fault in release's second copy undoes the first``() =
        let a = BlockAllocator(8)
        use s = new PagedSeqState(acc, 2, 4, Scripted [ 3 ])
        s.EnsureCapacity(a, 4) |> ignore // copy 0
        s.SetLen 3
        s.SyncContextLen() // copy 1
        let before = a.Snapshot()
        Assert.Throws<DeviceFaultException>(fun () -> s.Release a) |> ignore // copies 2 (table), 3 (len: fails), 4 (undo)
        Assert.Equal<int[]>(before.FreeList, a.Snapshot().FreeList)
        Assert.Equal(3, s.Len)
        let struct (table, len) = s.ReadDevice()
        Assert.Equal<uint[]>([| 0u; 1u; 0u; 0u |], table)
        Assert.Equal(3u, len)
        s.Validate()

    [<Fact>]
    member _.``when the undo fails too, the sequence reports its mirror lost and refuses further use``() =
        let a = BlockAllocator(8)
        use s = new PagedSeqState(acc, 2, 4, Scripted [ 2; 3 ])
        s.EnsureCapacity(a, 4) |> ignore // copy 0
        Assert.Throws<DeviceMirrorLostException>(fun () -> s.Release a) |> ignore // 1 ok, 2 fails, 3 (undo) fails
        Assert.Throws<InvalidOperationException>(fun () -> s.SyncContextLen()) |> ignore
        Assert.Equal(6, a.FreeCount)

    [<Fact>]
    member _.``release after another owner freed a block is refused and changes nothing``() =
        let a = BlockAllocator(4)
        use s = new PagedSeqState(acc, 1, 4)
        s.EnsureCapacity(a, 2) |> ignore
        a.Free(ReadOnlySpan [| s.Blocks[1] |])
        let e = Assert.Throws<PagedKvException>(fun () -> s.Release a)
        Assert.Equal(PagedKv.Fault.FreeOfFreeBlock, e.Fault)
        Assert.Equal(2, s.Blocks.Count)
        s.Validate()

    [<Fact>]
    member _.``creation validates block size and table size``() =
        for bs, mb, fault in [ 0, 4, PagedKv.Fault.BlockSizeOutOfRange; Limits.MaxBlockSize + 1, 4, PagedKv.Fault.BlockSizeOutOfRange
                               4, 0, PagedKv.Fault.MaxBlocksOutOfRange; 4, Limits.MaxBlocksPerSeq + 1, PagedKv.Fault.MaxBlocksOutOfRange ] do
            let e = Assert.Throws<PagedKvException>(fun () -> new PagedSeqState(acc, bs, mb) |> ignore)
            Assert.Equal(fault, e.Fault)
