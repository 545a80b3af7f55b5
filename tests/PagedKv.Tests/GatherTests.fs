/// The paged gather kernel against the host gather: random pools, tables and lengths, f32 and
/// f16; rows past the context length are never written and table entries past it never read.
module PagedKv.Tests.GatherTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open ILGPU
open ILGPU.Runtime
open PagedKv.Allocation
open PagedKv.Kernels
open PagedKv.Sequences
open PagedKv.Harness

type Case =
    { BlockSize: int
      HeadDim: int
      /// Blocks in the pool; the last one is poison: only table entries past the length name it.
      PoolBlocks: int
      MaxBlocks: int
      Table: uint32 list
      Len: int
      Seed: int }

let genCase =
    gen {
        let! blockSize = Gen.choose (1, 8)
        let! headDim = Gen.choose (1, 8)
        let! poolBlocks = Gen.choose (2, 16)
        let! maxBlocks = Gen.choose (1, 8)
        let! used = Gen.choose (0, maxBlocks)
        let! table = Gen.listOfLength used (Gen.choose (0, poolBlocks - 2) |> Gen.map uint32)
        let! len = if used = 0 then Gen.constant 0 else Gen.choose ((used - 1) * blockSize + 1, used * blockSize)
        let! seed = Gen.choose (0, Int32.MaxValue)
        let poison = uint32 (poolBlocks - 1)
        return { BlockSize = blockSize; HeadDim = headDim; PoolBlocks = poolBlocks; MaxBlocks = maxBlocks
                 Table = table @ List.replicate (maxBlocks - used) poison; Len = len; Seed = seed }
    }

type CaseArb =
    static member Case() = Arb.fromGen genCase

let private poisonValue = -7777.0f
let private untouched = 31337.0f

/// Runs the kernel for case c with values of type 'T; true when the output equals the host
/// gather on the first len rows, is untouched past them, and holds no poison.
let check<'T when 'T: unmanaged and 'T: struct and 'T: equality and 'T: (new: unit -> 'T) and 'T :> ValueType> (acc: Accelerator) (ofFloat: float32 -> 'T) (c: Case) =
    let rng = Random(c.Seed)
    let rows = c.PoolBlocks * c.BlockSize
    let pool =
        Array.init (rows * c.HeadDim) (fun i ->
            if i / c.HeadDim >= (c.PoolBlocks - 1) * c.BlockSize then ofFloat poisonValue
            else ofFloat (float32 (rng.Next(-1000, 1000)) / 8.0f))
    let outLen = c.MaxBlocks * c.BlockSize * c.HeadDim
    use devPool = acc.Allocate1D<'T>(pool)
    use devTable = acc.Allocate1D<uint32>(Array.ofList c.Table)
    use devLen = acc.Allocate1D<uint32>([| uint32 c.Len |])
    use devOut = acc.Allocate1D<'T>(Array.create outLen (ofFloat untouched))
    let kernel = PagedGather.Load<'T> acc
    kernel.Invoke(Index1D outLen, devPool.View, devTable.View, devLen.View, devOut.View, c.BlockSize, c.HeadDim)
    acc.Synchronize()
    let actual = devOut.GetAsArray1D()
    let expected = Array.create outLen (ofFloat untouched)
    PagedGather.Host<'T>(ReadOnlySpan pool, ReadOnlySpan(Array.ofList c.Table), c.Len, Span expected, c.BlockSize, c.HeadDim)
    actual = expected && not (Array.contains (ofFloat poisonValue) actual)

let private gatherOn (acc: Accelerator) (c: Case) =
    check<float32> acc id c && check<Half> acc Half.op_Explicit c

[<Collection("device")>]
type Gather() =
    [<Property(Arbitrary = [| typeof<CaseArb> |], MaxTest = 150)>]
    member _.``CPU accelerator: kernel equals the host gather (f32 and f16), never past the length``(c: Case) =
        gatherOn Devices.cpu.Value c

    [<SequenceTests.CudaFact>]
    member _.``CUDA: kernel equals the host gather (f32 and f16), never past the length``() =
        let acc = Devices.cuda.Value.Value
        for c in Gen.sampleWithSeed (Rnd 42UL) 20 300 genCase do
            Assert.True(gatherOn acc c, sprintf "%A" c)

    [<Fact>]
    member _.``the kernel reads a PagedSeqState's own device table and length``() =
        let acc = Devices.cpu.Value
        let a = BlockAllocator(16)
        a.TryAllocateN 5 |> ignore // the sequence's blocks are 5, 6, 7 — not 0, 1, 2
        use s = new PagedSeqState(acc, 4, 6)
        s.EnsureCapacity(a, 10) |> ignore
        s.SetLen 10
        s.SyncContextLen()
        let headDim = 3
        let pool = Array.init (16 * 4 * headDim) float32
        use devPool = acc.Allocate1D<float32>(pool)
        use devOut = acc.Allocate1D<float32>(Array.create (6 * 4 * headDim) -1.0f)
        (PagedGather.Load<float32> acc).Invoke(Index1D(6 * 4 * headDim), devPool.View, s.DeviceBlockTable, s.DeviceContextLen, devOut.View, 4, headDim)
        acc.Synchronize()
        let actual = devOut.GetAsArray1D()
        let expected = Array.create (6 * 4 * headDim) -1.0f
        PagedGather.Host<float32>(ReadOnlySpan pool, ReadOnlySpan(s.Blocks |> Seq.map uint32 |> Array.ofSeq), 10, Span expected, 4, headDim)
        Assert.Equal<float32[]>(expected, actual)
        Assert.Equal(5.0f * 4.0f * 3.0f, actual[0])
