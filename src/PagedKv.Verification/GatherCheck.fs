/// The paged gather kernel against the host gather, on one random case: shared by the tests
/// and by `verify` (which runs it on CUDA).
module PagedKv.Verification.GatherCheck

open System
open FsCheck
open FsCheck.FSharp
open ILGPU
open ILGPU.Runtime
open PagedKv.Kernels

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
    PagedGather.For(acc).Launch<'T>(devPool.View, devTable.View, devLen.View, devOut.View, c.BlockSize, c.HeadDim, c.MaxBlocks * c.BlockSize)
    acc.Synchronize()
    let actual = devOut.GetAsArray1D()
    let expected = Array.create outLen (ofFloat untouched)
    PagedGather.Host<'T>(ReadOnlySpan pool, ReadOnlySpan(Array.ofList c.Table), c.Len, Span expected, c.BlockSize, c.HeadDim)
    actual = expected && not (Array.contains (ofFloat poisonValue) actual)

/// Both element types: f32 and f16.
let gatherOn (acc: Accelerator) (c: Case) =
    check<float32> acc id c && check<Half> acc Half.op_Explicit c


/// n cases drawn from seed (the same n cases for the same seed).
let sampleCases (seed: uint64) (n: int) : Case[] = Gen.sampleWithSeed (Rnd seed) 20 n genCase |> Array.ofSeq
