/// Runs a concrete Op on the spec: one allocator, the sequences that draw on it, and a prefix
/// cache over it.
module PagedKv.Verification.Model

open PagedKv.Spec

/// Everything a replay session holds: the allocator, the sequences by id, the prefix cache; and,
/// for the history generator, each admitted request's prompt (harness state, not the spec's).
type World =
    { Alloc: Allocator.State
      Seqs: Map<int, Sequence.State>
      Prefix: PrefixCache.State option
      Prompts: Map<int, uint32 list> }

let world (alloc: Allocator.State) = { Alloc = alloc; Seqs = Map.empty; Prefix = None; Prompts = Map.empty }

let private onAlloc f (w: World) =
    let outcome, alloc = f w.Alloc
    outcome, { w with Alloc = alloc }

let private unitTo reply (outcome, state) = Result.map (fun () -> reply) outcome, state

/// A sequence op on sequence q: UnknownSequence when q names none.
let private onSeq q (f: Allocator.State * Sequence.State -> Outcome<unit> * (Allocator.State * Sequence.State)) (w: World) =
    match Map.tryFind q w.Seqs with
    | None -> Error(Fault(UnknownSequence q)), w
    | Some s ->
        let outcome, (alloc, s') = f (w.Alloc, s)
        Result.map (fun () -> Done) outcome, { w with Alloc = alloc; Seqs = Map.add q s' w.Seqs }

let private hostOnly f (alloc, s) = let o, s' = f s in o, (alloc, s')

/// A prefix-cache op. Precondition (the generator's): a cache exists.
let private onPrefix f (w: World) =
    match w.Prefix with
    | None -> failwith "a prefix-cache op without a prefix cache (the protocol answers bad_request; histories never do this)"
    | Some c ->
        let outcome, (alloc, c') = f (w.Alloc, c)
        outcome, { w with Alloc = alloc; Prefix = Some c' }

let step (op: Op) (w: World) : Outcome<Reply> * World =
    match op with
    | New(c, policy) ->
        match Allocator.create policy c with
        | Ok fresh -> Ok Done, world fresh
        | Error f -> Error(Fault f), w
    | Allocate -> onAlloc (Allocator.allocate >> fun (o, s) -> Result.map Block o, s) w
    | AllocateN n -> onAlloc (Allocator.allocateN n >> fun (o, s) -> Result.map Blocks o, s) w
    | Free bs -> onAlloc (Allocator.free bs >> unitTo Done) w
    | Acquire b -> onAlloc (Allocator.acquire b >> unitTo Done) w
    | AcquireMany bs -> onAlloc (Allocator.acquireMany bs >> unitTo Done) w
    | RegisterBlockHash(b, h) -> onAlloc (Allocator.registerBlockHash b h >> unitTo Done) w
    | TryAcquireByHash h -> onAlloc (Allocator.tryAcquireByHash h >> fun (o, s) -> Result.map Hit o, s) w
    | RefCount b -> Allocator.refCountOf b w.Alloc |> Result.map Count, w
    | FreeCount -> Ok(Count(Allocator.freeCount w.Alloc)), w
    | Capacity -> Ok(Count w.Alloc.Capacity), w
    | PeakInUse -> Ok(Count w.Alloc.PeakInUse), w
    | HashTableSize -> Ok(Count w.Alloc.HashToBlock.Count), w
    | BlockHash(parent, tokens) -> Ok(Hash(SipHash.blockHash parent tokens)), w
    | BlockHashChain(tokens, blockSize) ->
        match SipHash.blockHashChain tokens blockSize with
        | Ok hashes -> Ok(Hashes hashes), w
        | Error f -> Error(Fault f), w
    | SeqNew(q, bs, mb) ->
        if q < 0 || q > Limits.maxSequenceId then Error(Fault(UnknownSequence q)), w
        else
            match Sequence.create bs mb with
            | Error f -> Error(Fault f), w
            | Ok _ when w.Seqs.ContainsKey q -> Error(Fault(SequenceExists q)), w
            | Ok s -> Ok Done, { w with Seqs = Map.add q s w.Seqs }
    | SeqEnsureCapacity(q, t) -> onSeq q (Sequence.ensureCapacity t) w
    | SeqSetLen(q, l) -> onSeq q (hostOnly (Sequence.setLen l)) w
    | SeqAdvanceLen(q, k) -> onSeq q (hostOnly (Sequence.advanceLen k)) w
    | SeqSync q -> onSeq q (hostOnly (fun s -> Ok(), Sequence.syncContextLen s)) w
    | SeqRelease q -> onSeq q Sequence.release w
    | PrefixNew(bs, mb, k) ->
        // Values first (block size, table size, collide), then the state.
        match PrefixCache.create bs mb (if k > 0 then PrefixCache.Colliding k else PrefixCache.Sip), w.Prefix with
        | Error f, _ -> Error(Fault f), w
        | Ok _, _ when k < 0 -> Error(Fault(CountOutOfRange k)), w
        | Ok _, Some c when not c.Requests.IsEmpty -> Error(Fault(SequenceExists(Seq.head c.Requests.Keys))), w
        | Ok c, _ -> Ok Done, { w with Prefix = Some c; Prompts = Map.empty }
    | ReqAdmit(q, tokens, salt) ->
        let outcome, w' = onPrefix (PrefixCache.admit q tokens salt) w
        match outcome with
        | Ok(PrefixCache.Admitted computed) ->
            let blocks = w'.Prefix.Value.Requests[q].Seq.Blocks
            Ok(Admission(true, computed, 0, blocks)), { w' with Prompts = Map.add q tokens w'.Prompts }
        | Ok(PrefixCache.Refused missing) -> Ok(Admission(false, 0, missing, [])), w'
        | Error e -> Error e, w'
    | ReqAppend(q, tokens) ->
        let outcome, w' = onPrefix (PrefixCache.append q tokens) w
        Result.map (function PrefixCache.Appended -> Appending(true, 0) | PrefixCache.AppendRefused m -> Appending(false, m)) outcome, w'
    | ReqFinish q -> onPrefix (PrefixCache.finish q >> unitTo Done) w |> fun (o, w') -> o, (match o with Ok _ -> { w' with Prompts = Map.remove q w'.Prompts } | _ -> w')
    | ReqPreempt q -> onPrefix (PrefixCache.preempt q >> unitTo Done) w |> fun (o, w') -> o, (match o with Ok _ -> { w' with Prompts = Map.remove q w'.Prompts } | _ -> w')

/// One sequence's observable state, device buffers included.
type SeqSnapshot =
    { Blocks: int list
      Len: int
      DeviceTable: int list
      DeviceLen: int
      BytesWritten: int64 }

/// One prefix-cache request's observable state (its sequence's device table read back).
type ReqSnapshot =
    { Blocks: int list
      Len: int
      Salt: uint64
      DeviceTable: int list }

type Snapshot =
    { Alloc: Allocator.Snapshot
      Seqs: (int * SeqSnapshot) list
      Requests: (int * ReqSnapshot) list
      PrefixStats: PrefixCache.Stats option }

let snapshot (w: World) : Snapshot =
    { Alloc = Allocator.snapshot w.Alloc
      Seqs =
        [ for KeyValue(q, s) in w.Seqs ->
              q,
              { Blocks = s.Blocks
                Len = s.Len
                DeviceTable = Sequence.deviceTable s
                DeviceLen = s.DeviceLen
                BytesWritten = s.BytesWritten } ]
      Requests =
        match w.Prefix with
        | None -> []
        | Some c ->
            [ for KeyValue(q, r) in c.Requests ->
                  q, { Blocks = r.Seq.Blocks; Len = r.Seq.Len; Salt = r.Salt; DeviceTable = Sequence.deviceTable r.Seq } ]
      PrefixStats = w.Prefix |> Option.map (fun c -> c.Stats) }
