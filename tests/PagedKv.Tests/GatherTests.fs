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
open PagedKv.Protocol
open PagedKv.Verification

type CaseArb =
    static member Case() = Arb.fromGen GatherCheck.genCase

[<Collection("device")>]
type Gather() =
    [<Property(Arbitrary = [| typeof<CaseArb> |], MaxTest = 150)>]
    member _.``CPU accelerator: kernel equals the host gather (f32 and f16), never past the length``(c: GatherCheck.Case) =
        GatherCheck.gatherOn Accelerators.Cpu c

    [<SequenceTests.CudaFact>]
    member _.``CUDA: kernel equals the host gather (f32 and f16), never past the length``() =
        let acc = Accelerators.Cuda
        for c in Gen.sampleWithSeed (Rnd 42UL) 20 300 GatherCheck.genCase do
            Assert.True(GatherCheck.gatherOn acc c, sprintf "%A" c)

    [<Fact>]
    member _.``the kernel reads a PagedSeqState's own device table and length``() =
        let acc = Accelerators.Cpu
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
        PagedGather.For(acc).Launch<float32>(devPool.View, s.DeviceBlockTable, s.DeviceContextLen, devOut.View, 4, headDim, 6 * 4)
        acc.Synchronize()
        let actual = devOut.GetAsArray1D()
        let expected = Array.create (6 * 4 * headDim) -1.0f
        PagedGather.Host<float32>(ReadOnlySpan pool, ReadOnlySpan(s.Blocks |> Seq.map uint32 |> Array.ofSeq), 10, Span expected, 4, headDim)
        Assert.Equal<float32[]>(expected, actual)
        Assert.Equal(5.0f * 4.0f * 3.0f, actual[0])
