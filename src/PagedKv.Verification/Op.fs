/// Concrete allocator operations and their replies: the vocabulary shared by the spec runner,
/// the implementation adapter and the replay protocol (docs/protocol.md).
namespace PagedKv.Verification

open System
open PagedKv.Spec

type Op =
    | New of capacity: int * policy: Allocator.Policy
    | Allocate
    | AllocateN of n: int
    | Free of blocks: int list
    | Acquire of block: int
    | AcquireMany of blocks: int list
    | RegisterBlockHash of block: int * hash: uint64
    | TryAcquireByHash of hash: uint64
    | RefCount of block: int
    | FreeCount
    | Capacity
    | PeakInUse
    | HashTableSize
    | SeqNew of seq: int * blockSize: int * maxBlocks: int
    | SeqEnsureCapacity of seq: int * targetLen: int
    | SeqSetLen of seq: int * len: int
    | SeqAdvanceLen of seq: int * tokens: int
    | SeqSync of seq: int
    | SeqRelease of seq: int

type Reply =
    | Done
    | Block of int
    | Blocks of int list
    | Hit of int option
    | Count of int

module Op =
    let private ints (xs: int list) = "[" + String.Join(",", xs) + "]"

    /// One request line of the replay protocol.
    let toJson (op: Op) =
        match op with
        | New(c, Allocator.LifoPreferUnhashed) -> sprintf """{"op":"new","capacity":%d}""" c
        | New(c, Allocator.Lru) -> sprintf """{"op":"new","capacity":%d,"policy":"lru"}""" c
        | Allocate -> """{"op":"allocate"}"""
        | AllocateN n -> sprintf """{"op":"allocate_n","n":%d}""" n
        | Free bs -> sprintf """{"op":"free","blocks":%s}""" (ints bs)
        | Acquire b -> sprintf """{"op":"acquire","block":%d}""" b
        | AcquireMany bs -> sprintf """{"op":"acquire_many","blocks":%s}""" (ints bs)
        | RegisterBlockHash(b, h) -> sprintf """{"op":"register_block_hash","block":%d,"hash":"%d"}""" b h
        | TryAcquireByHash h -> sprintf """{"op":"try_acquire_by_hash","hash":"%d"}""" h
        | RefCount b -> sprintf """{"op":"ref_count","block":%d}""" b
        | FreeCount -> """{"op":"free_count"}"""
        | Capacity -> """{"op":"capacity"}"""
        | PeakInUse -> """{"op":"peak_in_use"}"""
        | HashTableSize -> """{"op":"hash_table_size"}"""
        | SeqNew(q, bs, mb) -> sprintf """{"op":"seq_new","seq":%d,"block_size":%d,"max_blocks":%d}""" q bs mb
        | SeqEnsureCapacity(q, t) -> sprintf """{"op":"seq_ensure_capacity","seq":%d,"target_len":%d}""" q t
        | SeqSetLen(q, l) -> sprintf """{"op":"seq_set_len","seq":%d,"len":%d}""" q l
        | SeqAdvanceLen(q, k) -> sprintf """{"op":"seq_advance_len","seq":%d,"tokens":%d}""" q k
        | SeqSync q -> sprintf """{"op":"seq_sync","seq":%d}""" q
        | SeqRelease q -> sprintf """{"op":"seq_release","seq":%d}""" q

    /// Whether the op needs a device (sequence ops).
    let needsDevice (op: Op) =
        match op with
        | SeqNew _ | SeqEnsureCapacity _ | SeqSetLen _ | SeqAdvanceLen _ | SeqSync _ | SeqRelease _ -> true
        | _ -> false

    /// The protocol's error kind for an error outcome.
    let errorKind (e: Error) =
        match e with
        | Exhausted
        | ExceedsMaxBlocks _ -> "resource_exhausted"
        | Fault f ->
            match Fault.kind f with
            | InvalidArgument -> "invalid_argument"
            | InvalidState -> "invalid_state"

    /// The `ok` value of a reply as protocol JSON.
    let replyJson (r: Reply) =
        match r with
        | Done
        | Hit None -> "null"
        | Block b
        | Hit(Some b)
        | Count b -> string b
        | Blocks bs -> ints bs

    /// One response line (the message text is free-form; this one names the fault).
    let outcomeJson (o: Outcome<Reply>) =
        match o with
        | Ok r -> sprintf """{"ok":%s}""" (replyJson r)
        | Error e -> sprintf """{"err":"%s","msg":"%A"}""" (errorKind e) e
