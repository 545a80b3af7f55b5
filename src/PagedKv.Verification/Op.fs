/// Concrete operations and their replies: the vocabulary shared by the spec runner, the
/// implementation adapter, the port checker and the replay protocol (docs/protocol.md).
namespace PagedKv.Verification

open System
open System.Text
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
    | BlockHash of parent: uint64 * tokens: uint32 list
    | BlockHashChain of tokens: uint32 list * blockSize: int
    | SeqNew of seq: int * blockSize: int * maxBlocks: int
    | SeqEnsureCapacity of seq: int * targetLen: int
    | SeqSetLen of seq: int * len: int
    | SeqAdvanceLen of seq: int * tokens: int
    | SeqSync of seq: int
    | SeqRelease of seq: int
    /// A prefix cache over the allocator; collide = 0: the original's hash (the protocol's field
    /// absent), k > 0: reduced to k values, k < 0: an invalid value.
    | PrefixNew of blockSize: int * maxBlocks: int * collide: int
    | ReqAdmit of seq: int * tokens: uint32 list * salt: uint64
    | ReqAppend of seq: int * tokens: uint32 list
    | ReqFinish of seq: int
    | ReqPreempt of seq: int

type Reply =
    | Done
    | Block of int
    | Blocks of int list
    | Hit of int option
    | Count of int
    | Hash of uint64
    | Hashes of uint64 list
    /// req_admit: admitted with `computed` tokens cached and these blocks, or refused for want of `missing`.
    | Admission of admitted: bool * computed: int * missing: int * blocks: int list
    /// req_append: appended, or refused for want of `missing` blocks.
    | Appending of appended: bool * missing: int

module Op =
    let private append (sb: StringBuilder) (s: string) = sb.Append s |> ignore

    let private ints (sb: StringBuilder) (xs: int list) =
        append sb "["
        xs |> List.iteri (fun i x -> (if i > 0 then append sb ","); sb.Append x |> ignore)
        append sb "]"

    let private uints (sb: StringBuilder) (xs: uint32 list) =
        append sb "["
        xs |> List.iteri (fun i x -> (if i > 0 then append sb ","); sb.Append x |> ignore)
        append sb "]"

    let private hashes (sb: StringBuilder) (xs: uint64 list) =
        append sb "["
        xs |> List.iteri (fun i x -> (if i > 0 then append sb ","); sb.Append('"').Append(x).Append('"') |> ignore)
        append sb "]"

    /// One request line of the replay protocol.
    let toJson (op: Op) =
        let sb = StringBuilder(48)
        let field (name: string) (value: int) = sb.Append(",\"").Append(name).Append("\":").Append(value) |> ignore
        let opName (name: string) = sb.Append("{\"op\":\"").Append(name).Append('"') |> ignore
        match op with
        | New(c, policy) ->
            opName "new"
            field "capacity" c
            if policy = Allocator.Lru then append sb ",\"policy\":\"lru\""
        | Allocate -> opName "allocate"
        | AllocateN n -> opName "allocate_n"; field "n" n
        | Free bs -> opName "free"; append sb ",\"blocks\":"; ints sb bs
        | Acquire b -> opName "acquire"; field "block" b
        | AcquireMany bs -> opName "acquire_many"; append sb ",\"blocks\":"; ints sb bs
        | RegisterBlockHash(b, h) -> opName "register_block_hash"; field "block" b; sb.Append(",\"hash\":\"").Append(h).Append('"') |> ignore
        | TryAcquireByHash h -> opName "try_acquire_by_hash"; sb.Append(",\"hash\":\"").Append(h).Append('"') |> ignore
        | RefCount b -> opName "ref_count"; field "block" b
        | FreeCount -> opName "free_count"
        | Capacity -> opName "capacity"
        | PeakInUse -> opName "peak_in_use"
        | HashTableSize -> opName "hash_table_size"
        | BlockHash(p, ts) -> opName "block_hash"; sb.Append(",\"parent\":\"").Append(p).Append("\",\"tokens\":") |> ignore; uints sb ts
        | BlockHashChain(ts, bs) -> opName "block_hash_chain"; append sb ",\"tokens\":"; uints sb ts; field "block_size" bs
        | SeqNew(q, bs, mb) -> opName "seq_new"; field "seq" q; field "block_size" bs; field "max_blocks" mb
        | SeqEnsureCapacity(q, t) -> opName "seq_ensure_capacity"; field "seq" q; field "target_len" t
        | SeqSetLen(q, l) -> opName "seq_set_len"; field "seq" q; field "len" l
        | SeqAdvanceLen(q, k) -> opName "seq_advance_len"; field "seq" q; field "tokens" k
        | SeqSync q -> opName "seq_sync"; field "seq" q
        | SeqRelease q -> opName "seq_release"; field "seq" q
        | PrefixNew(bs, mb, k) ->
            opName "prefix_new"; field "block_size" bs; field "max_blocks" mb
            if k > 0 then field "collide" k
        | ReqAdmit(q, ts, salt) -> opName "req_admit"; field "seq" q; append sb ",\"tokens\":"; uints sb ts; sb.Append(",\"salt\":\"").Append(salt).Append('"') |> ignore
        | ReqAppend(q, ts) -> opName "req_append"; field "seq" q; append sb ",\"tokens\":"; uints sb ts
        | ReqFinish q -> opName "req_finish"; field "seq" q
        | ReqPreempt q -> opName "req_preempt"; field "seq" q
        append sb "}"
        sb.ToString()

    /// The Op a well-formed request stands for; None for requests the model does not run (hello,
    /// state, seq_state, fail_next_copy) and for malformed ones. Integers past 32 bits are clamped
    /// to Int32.MinValue / Int32.MaxValue, which every range check judges the same.
    let ofJson (e: Text.Json.JsonElement) : Op option =
        let clamp (v: Text.Json.JsonElement) =
            let text = v.GetRawText()
            if v.ValueKind <> Text.Json.JsonValueKind.Number || text.IndexOfAny([| '.'; 'e'; 'E' |]) >= 0 then raise (FormatException "not an integer literal")
            match v.TryGetInt32() with
            | true, x -> x
            | _ -> if text.StartsWith "-" then Int32.MinValue else Int32.MaxValue
        let int (name: string) = clamp (e.GetProperty name)
        let ints (name: string) = [ for x in e.GetProperty(name).EnumerateArray() -> clamp x ]
        let tokens (name: string) = [ for x in e.GetProperty(name).EnumerateArray() -> x.GetUInt32() ]
        let hash (name: string) =
            let v = e.GetProperty(name)
            match v.ValueKind with
            | Text.Json.JsonValueKind.String ->
                let text = v.GetString()
                if text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) then Convert.ToUInt64(text.Substring 2, 16) else UInt64.Parse text
            | _ -> v.GetUInt64()
        try
            match e.GetProperty("op").GetString() with
            | "new" ->
                let policy =
                    match e.TryGetProperty "policy" with
                    | false, _ -> Allocator.LifoPreferUnhashed
                    | true, p when p.ValueKind = Text.Json.JsonValueKind.String && p.GetString() = "lifo" -> Allocator.LifoPreferUnhashed
                    | true, p when p.ValueKind = Text.Json.JsonValueKind.String && p.GetString() = "lru" -> Allocator.Lru
                    | _ -> raise (FormatException "not a policy")
                Some(New(int "capacity", policy))
            | "allocate" -> Some Allocate
            | "allocate_n" -> Some(AllocateN(int "n"))
            | "free" -> Some(Free(ints "blocks"))
            | "acquire" -> Some(Acquire(int "block"))
            | "acquire_many" -> Some(AcquireMany(ints "blocks"))
            | "register_block_hash" -> Some(RegisterBlockHash(int "block", hash "hash"))
            | "try_acquire_by_hash" -> Some(TryAcquireByHash(hash "hash"))
            | "ref_count" -> Some(RefCount(int "block"))
            | "free_count" -> Some FreeCount
            | "capacity" -> Some Capacity
            | "peak_in_use" -> Some PeakInUse
            | "hash_table_size" -> Some HashTableSize
            | "block_hash" -> Some(BlockHash(hash "parent", tokens "tokens"))
            | "block_hash_chain" -> Some(BlockHashChain(tokens "tokens", int "block_size"))
            | "seq_new" -> Some(SeqNew(int "seq", int "block_size", int "max_blocks"))
            | "seq_ensure_capacity" -> Some(SeqEnsureCapacity(int "seq", int "target_len"))
            | "seq_set_len" -> Some(SeqSetLen(int "seq", int "len"))
            | "seq_advance_len" -> Some(SeqAdvanceLen(int "seq", int "tokens"))
            | "seq_sync" -> Some(SeqSync(int "seq"))
            | "seq_release" -> Some(SeqRelease(int "seq"))
            | "prefix_new" -> Some(PrefixNew(int "block_size", int "max_blocks", (match e.TryGetProperty "collide" with | true, v -> (let k = clamp v in if k > 0 then k else -1) | _ -> 0)))
            | "req_admit" -> Some(ReqAdmit(int "seq", tokens "tokens", hash "salt"))
            | "req_append" -> Some(ReqAppend(int "seq", tokens "tokens"))
            | "req_finish" -> Some(ReqFinish(int "seq"))
            | "req_preempt" -> Some(ReqPreempt(int "seq"))
            | _ -> None
        with
        | :? Collections.Generic.KeyNotFoundException
        | :? InvalidOperationException
        | :? FormatException
        | :? OverflowException -> None

    /// Whether the op needs a device (sequence ops).
    let needsDevice (op: Op) =
        match op with
        | SeqNew _ | SeqEnsureCapacity _ | SeqSetLen _ | SeqAdvanceLen _ | SeqSync _ | SeqRelease _ -> true
        | _ -> false

    /// Whether the op is a prefix-cache op (prefix_new, req_*).
    let isPrefix (op: Op) =
        match op with
        | PrefixNew _ | ReqAdmit _ | ReqAppend _ | ReqFinish _ | ReqPreempt _ -> true
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
        let sb = StringBuilder()
        match r with
        | Done
        | Hit None -> append sb "null"
        | Block b
        | Hit(Some b)
        | Count b -> sb.Append b |> ignore
        | Blocks bs -> ints sb bs
        | Hash h -> sb.Append('"').Append(h).Append('"') |> ignore
        | Hashes hs -> hashes sb hs
        | Admission(true, computed, _, blocks) -> sb.Append("{\"admitted\":true,\"computed\":").Append(computed).Append(",\"blocks\":") |> ignore; ints sb blocks; append sb "}"
        | Admission(false, _, missing, _) -> sb.Append("{\"admitted\":false,\"missing\":").Append(missing).Append('}') |> ignore
        | Appending(true, _) -> append sb "{\"appended\":true}"
        | Appending(false, missing) -> sb.Append("{\"appended\":false,\"missing\":").Append(missing).Append('}') |> ignore
        sb.ToString()

    /// One response line (the message text is free-form; this one names the fault).
    let outcomeJson (o: Outcome<Reply>) =
        match o with
        | Ok r -> "{\"ok\":" + replyJson r + "}"
        | Error e -> sprintf """{"err":"%s","msg":"%s"}""" (errorKind e) ((sprintf "%A" e).Replace("\"", "'"))
