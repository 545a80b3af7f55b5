/// Runs a concrete Op on the spec: one allocator and the sequences that draw on it.
module PagedKv.Verification.Model

open PagedKv.Spec

/// Everything a replay session holds: the allocator and the sequences by id.
type World =
    { Alloc: Allocator.State
      Seqs: Map<int, Sequence.State> }

let world (alloc: Allocator.State) = { Alloc = alloc; Seqs = Map.empty }

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
        Result.map (fun () -> Done) outcome, { Alloc = alloc; Seqs = Map.add q s' w.Seqs }

let private hostOnly f (alloc, s) = let o, s' = f s in o, (alloc, s')

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

/// One sequence's observable state, device buffers included.
type SeqSnapshot =
    { Blocks: int list
      Len: int
      DeviceTable: int list
      DeviceLen: int
      BytesWritten: int64 }

type Snapshot =
    { Alloc: Allocator.Snapshot
      Seqs: (int * SeqSnapshot) list }

let snapshot (w: World) : Snapshot =
    { Alloc = Allocator.snapshot w.Alloc
      Seqs =
        [ for KeyValue(q, s) in w.Seqs ->
              q,
              { Blocks = s.Blocks
                Len = s.Len
                DeviceTable = Sequence.deviceTable s
                DeviceLen = s.DeviceLen
                BytesWritten = s.BytesWritten } ] }
