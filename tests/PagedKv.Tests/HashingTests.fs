/// block_hash / block_hash_chain: the original's recorded vectors, and the C# implementation
/// against the F# spec (an independent SipHash-1-3) on random inputs.
module PagedKv.Tests.HashingTests

open System
open System.IO
open System.Text.Json
open Xunit
open FsCheck.FSharp
open FsCheck.Xunit
open PagedKv
open PagedKv.Hashing
open PagedKv.Spec

type Vector =
    | HashVector of parent: uint64 * tokens: uint32 list * hash: uint64 * stream: string
    | ChainVector of blockSize: int * tokens: uint32 list * hashes: uint64 list

let private u64 (e: JsonElement) = e.GetUInt64()
let private tokens (e: JsonElement) = [ for t in e.GetProperty("tokens").EnumerateArray() -> t.GetUInt32() ]

let vectors =
    File.ReadAllLines(Path.Combine(Settings.vectorsDir, "block_hash_vectors.jsonl"))
    |> Array.filter (fun l -> l.Trim() <> "")
    |> Array.map (fun line ->
        let e = JsonDocument.Parse(line).RootElement
        match e.GetProperty("kind").GetString() with
        | "block_hash" ->
            HashVector(u64 (e.GetProperty "parent"), tokens e, u64 (e.GetProperty "hash"), e.GetProperty("stream_hex").GetString())
        | "block_hash_chain" ->
            ChainVector(e.GetProperty("block_size").GetInt32(), tokens e, [ for h in e.GetProperty("hashes").EnumerateArray() -> u64 h ])
        | other -> failwithf "unknown vector kind %s" other)

let private implChain (ts: uint32 list) size = BlockHasher.BlockHashChain(ReadOnlySpan(Array.ofList ts), size) |> List.ofArray

[<Fact>]
let ``every recorded vector is reproduced by the implementation and by the spec`` () =
    Assert.True(vectors.Length >= 20)
    for v in vectors do
        match v with
        | HashVector(parent, ts, hash, stream) ->
            Assert.Equal(stream, Convert.ToHexStringLower(Array.ofList (SipHash.blockHashStream parent ts)))
            Assert.Equal(hash, BlockHasher.BlockHash(parent, ReadOnlySpan(Array.ofList ts)))
            Assert.Equal(hash, SipHash.blockHash parent ts)
        | ChainVector(size, ts, hashes) ->
            Assert.Equal<uint64 list>(hashes, implChain ts size)
            Assert.Equal(Ok hashes, SipHash.blockHashChain ts size)

[<Settings.ScaledProperty(300)>]
let ``SipHash-1-3: implementation equals spec on every message length`` (bytes: byte[]) =
    BlockHasher.SipHash13(ReadOnlySpan bytes) = SipHash.sipHash13 (List.ofArray bytes)

[<Settings.ScaledProperty(300)>]
let ``block_hash: implementation equals spec`` (parent: uint64) (ts: uint32 list) =
    BlockHasher.BlockHash(parent, ReadOnlySpan(Array.ofList ts)) = SipHash.blockHash parent ts

[<Settings.ScaledProperty(300)>]
let ``block_hash_chain: implementation equals spec, full blocks only, each chained from the last`` (ts: uint32 list) (size: byte) =
    let size = int size % 9 + 1
    let chain = implChain ts size
    chain = (SipHash.blockHashChain ts size |> Result.defaultValue [])
    && chain.Length = ts.Length / size
    && (chain, List.chunkBySize size ts |> List.truncate chain.Length)
       ||> List.zip
       |> List.fold (fun (parent, ok) (h, block) -> h, ok && h = BlockHasher.BlockHash(parent, ReadOnlySpan(Array.ofList block))) (0UL, true)
       |> snd

[<Theory>]
[<InlineData(0)>]
[<InlineData(-1)>]
[<InlineData(65537)>]
let ``block_hash_chain rejects a block size outside [1, MaxBlockSize]`` (size: int) =
    let e = Assert.Throws<PagedKvException>(fun () -> implChain [ 1u; 2u ] size |> ignore)
    Assert.Equal(PagedKv.Fault.BlockSizeOutOfRange, e.Fault)
    Assert.Equal(PagedKv.ErrorKind.InvalidArgument, e.Kind)
    Assert.Contains(string size, e.Message)
    Assert.Equal(Error(BlockSizeOutOfRange size), SipHash.blockHashChain [ 1u; 2u ] size)

[<Fact>]
let ``limits agree between implementation and spec`` () =
    Assert.Equal(Limits.MaxCapacity, PagedKv.Spec.Limits.maxCapacity)
    Assert.Equal(Limits.MaxRefCount, PagedKv.Spec.Limits.maxRefCount)
    Assert.Equal(Limits.MaxBlocksPerSeq, PagedKv.Spec.Limits.maxBlocksPerSeq)
    Assert.Equal(Limits.MaxBlockSize, PagedKv.Spec.Limits.maxBlockSize)
    Assert.Equal(Limits.MaxSequenceId, PagedKv.Spec.Limits.maxSequenceId)
    Assert.Equal(int UInt16.MaxValue, Limits.MaxRefCount)
