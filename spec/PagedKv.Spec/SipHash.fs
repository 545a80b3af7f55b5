/// Block hashing, as the original computes it (Rust std DefaultHasher = SipHash-1-3, keys 0, 0).
///
/// blockHash parent tokens = SipHash-1-3 over: parent as 8 little-endian bytes, then each token
/// as 4 little-endian bytes, no length prefix. blockHashChain hashes the full blockSize-token
/// blocks in order, each chained from the previous hash (0 for the first), and drops a trailing
/// partial block.
module PagedKv.Spec.SipHash

let private rotl (x: uint64) (b: int) = (x <<< b) ||| (x >>> (64 - b))

let private sipRound (v0: uint64, v1: uint64, v2: uint64, v3: uint64) =
    let v0 = v0 + v1
    let v1 = rotl v1 13 ^^^ v0
    let v0 = rotl v0 32
    let v2 = v2 + v3
    let v3 = rotl v3 16 ^^^ v2
    let v0 = v0 + v3
    let v3 = rotl v3 21 ^^^ v0
    let v2 = v2 + v1
    let v1 = rotl v1 17 ^^^ v2
    let v2 = rotl v2 32
    (v0, v1, v2, v3)

/// Little-endian word of up to 8 bytes.
let private word (bytes: byte list) =
    bytes |> List.mapi (fun i b -> uint64 b <<< (8 * i)) |> List.fold (|||) 0UL

/// SipHash-1-3 with keys k0 = k1 = 0.
let sipHash13 (message: byte list) : uint64 =
    let compress (v0, v1, v2, v3) m =
        let (v0, v1, v2, v3) = sipRound (v0, v1, v2, v3 ^^^ m)
        (v0 ^^^ m, v1, v2, v3)
    let chunks = List.chunkBySize 8 message
    let whole, tail =
        match List.tryLast chunks with
        | Some last when last.Length < 8 -> List.take (chunks.Length - 1) chunks, last
        | _ -> chunks, []
    let init = (0x736f6d6570736575UL, 0x646f72616e646f6dUL, 0x6c7967656e657261UL, 0x7465646279746573UL)
    let state = whole |> List.map word |> List.fold compress init
    let lastWord = word tail ||| (uint64 (message.Length &&& 0xff) <<< 56)
    let (v0, v1, v2, v3) = compress state lastWord
    let (v0, v1, v2, v3) = (v0, v1, v2 ^^^ 0xffUL, v3) |> sipRound |> sipRound |> sipRound
    v0 ^^^ v1 ^^^ v2 ^^^ v3

let private leBytes (width: int) (value: uint64) = List.init width (fun i -> byte (value >>> (8 * i)))

/// The byte stream block_hash hashes.
let blockHashStream (parent: uint64) (tokens: uint32 list) =
    leBytes 8 parent @ List.collect (uint64 >> leBytes 4) tokens

let blockHash (parent: uint64) (tokens: uint32 list) : uint64 =
    sipHash13 (blockHashStream parent tokens)

/// Chained hashes of the full blocks; BlockSizeOutOfRange when blockSize is outside
/// [1, Limits.maxBlockSize] (the original divides by zero).
let blockHashChain (tokens: uint32 list) (blockSize: int) : Result<uint64 list, Fault> =
    if blockSize < 1 || blockSize > Limits.maxBlockSize then
        Error(BlockSizeOutOfRange blockSize)
    else
        tokens
        |> List.chunkBySize blockSize
        |> List.filter (fun block -> block.Length = blockSize)
        |> List.scan blockHash 0UL
        |> List.tail
        |> Ok
