/// The block allocator, as a pure model. Read this first when porting.
///
/// State: capacity; the free list, a stack (bottom → top); a ref count per block (0 = free);
/// the hash table hash → block (block → hash is its inverse); peak = most blocks ever in use.
///
/// - create c: free list c−1 … 0 bottom → top, so allocations on a fresh allocator yield 0, 1, 2, ….
/// - allocate: take the free entry nearest the top whose block has no hash, else the top entry;
///   remove it by swap-remove (the top entry moves into its slot); drop its stale hash; ref = 1;
///   peak = max(peak, in use). Exhausted when nothing is free.
/// - allocateN n: Exhausted (nothing taken) when fewer than n are free; else n × allocate.
/// - free bs: for each b in order, ref − 1; at 0, b is pushed on top, keeping its hash (soft-free).
/// - acquire b / acquireMany bs: ref + 1 for each.
/// - tryAcquireByHash h: miss → None. Live block → ref + 1. Soft-free block → removed from the
///   free list by swap-remove, ref = 1, peak updated.
/// - registerBlockHash b h: b's old hash is dropped, then h → b; if h was another block's, that
///   block loses it (last writer wins). The same hash again changes nothing.
///
/// Misuse is a Fault and changes nothing: arguments are checked before state, and in a batch
/// the first offender in batch order is reported. Batches are all or nothing.
module PagedKv.Spec.Allocator

type Block = int
type Hash = uint64

type State =
    { Capacity: int
      FreeList: Block list
      RefCounts: Map<Block, int>
      HashToBlock: Map<Hash, Block>
      PeakInUse: int }

let refCount (s: State) (b: Block) = Map.tryFind b s.RefCounts |> Option.defaultValue 0
let freeCount (s: State) = s.FreeList.Length
let inUse (s: State) = s.Capacity - freeCount s
let hashOf (s: State) (b: Block) = s.HashToBlock |> Map.tryFindKey (fun _ holder -> holder = b)

let private withRef b r s =
    { s with RefCounts = if r = 0 then Map.remove b s.RefCounts else Map.add b r s.RefCounts }

let private raisePeak s = { s with PeakInUse = max s.PeakInUse (inUse s) }

let private dropHash b s =
    match hashOf s b with
    | Some h -> { s with HashToBlock = Map.remove h s.HashToBlock }
    | None -> s

/// Remove the entry at index i (0 = bottom): the top entry moves into slot i.
let private swapRemove i (stack: Block list) =
    let top = stack.Length - 1
    if i = top then List.take top stack else stack |> List.take top |> List.updateAt i (List.last stack)

let private outOfRange s b = b < 0 || b >= s.Capacity

/// Each block of a batch paired with how often it has occurred so far (1 the first time).
let private occurrences (blocks: Block list) =
    blocks
    |> List.mapFold (fun seen b -> let k = 1 + (Map.tryFind b seen |> Option.defaultValue 0) in (b, k), Map.add b k seen) Map.empty
    |> fst

let create (capacity: int) : Result<State, Fault> =
    if capacity < 0 || capacity > Limits.maxCapacity then
        Error(CapacityOutOfRange capacity)
    else
        Ok { Capacity = capacity; FreeList = List.rev [ 0 .. capacity - 1 ]; RefCounts = Map.empty; HashToBlock = Map.empty; PeakInUse = 0 }

/// allocate's choice. Precondition: the free list is not empty.
let private take s =
    let hashed = s.HashToBlock |> Map.values |> Set.ofSeq
    let i =
        List.tryFindIndexBack (fun b -> not (hashed.Contains b)) s.FreeList
        |> Option.defaultValue (s.FreeList.Length - 1)
    let b = s.FreeList[i]
    b, { s with FreeList = swapRemove i s.FreeList } |> dropHash b |> withRef b 1

let allocate (s: State) : Outcome<Block> * State =
    if s.FreeList.IsEmpty then
        Error Exhausted, s
    else
        let b, s' = take s
        Ok b, raisePeak s'

let allocateN (n: int) (s: State) : Outcome<Block list> * State =
    if n < 0 then
        Error(Fault(CountOutOfRange n)), s
    elif freeCount s < n then
        Error Exhausted, s
    else
        let blocks, s' = List.mapFold (fun st () -> take st) s (List.replicate n ())
        Ok blocks, raisePeak s'

let free (blocks: Block list) (s: State) : Outcome<unit> * State =
    let release st b =
        let r = refCount st b - 1
        let st = withRef b r st
        if r = 0 then { st with FreeList = st.FreeList @ [ b ] } else st
    match List.tryFind (outOfRange s) blocks with
    | Some b -> Error(Fault(BlockOutOfRange b)), s
    | None ->
        match occurrences blocks |> List.tryFind (fun (b, k) -> k > refCount s b) with
        | Some(b, _) -> Error(Fault(FreeOfFreeBlock b)), s
        | None -> Ok(), List.fold release s blocks

let acquireMany (blocks: Block list) (s: State) : Outcome<unit> * State =
    let fault (b, k) =
        if refCount s b = 0 then Some(AcquireOfFreeBlock b)
        elif refCount s b + k > Limits.maxRefCount then Some(RefCountOverflow b)
        else None
    match List.tryFind (outOfRange s) blocks with
    | Some b -> Error(Fault(BlockOutOfRange b)), s
    | None ->
        match occurrences blocks |> List.tryPick fault with
        | Some f -> Error(Fault f), s
        | None -> Ok(), List.fold (fun st b -> withRef b (refCount st b + 1) st) s blocks

let acquire (b: Block) (s: State) = acquireMany [ b ] s

let tryAcquireByHash (h: Hash) (s: State) : Outcome<Block option> * State =
    match Map.tryFind h s.HashToBlock with
    | None -> Ok None, s
    | Some b when refCount s b = 0 ->
        let i = List.findIndexBack ((=) b) s.FreeList
        Ok(Some b), raisePeak (withRef b 1 { s with FreeList = swapRemove i s.FreeList })
    | Some b when refCount s b = Limits.maxRefCount -> Error(Fault(RefCountOverflow b)), s
    | Some b -> Ok(Some b), withRef b (refCount s b + 1) s

let registerBlockHash (b: Block) (h: Hash) (s: State) : Outcome<unit> * State =
    if outOfRange s b then Error(Fault(BlockOutOfRange b)), s
    elif refCount s b = 0 then Error(Fault(RegisterOnFreeBlock b)), s
    else
        let s' = dropHash b s
        Ok(), { s' with HashToBlock = Map.add h b s'.HashToBlock }

let refCountOf (b: Block) (s: State) : Outcome<int> =
    if outOfRange s b then Error(Fault(BlockOutOfRange b)) else Ok(refCount s b)

/// Full observable state, the form both sides are compared in.
type Snapshot =
    { Capacity: int
      FreeList: Block list
      RefCounts: int list
      HashTable: (Hash * Block) list
      PeakInUse: int }

let snapshot (s: State) : Snapshot =
    { Capacity = s.Capacity
      FreeList = s.FreeList
      RefCounts = List.init s.Capacity (refCount s)
      HashTable = Map.toList s.HashToBlock
      PeakInUse = s.PeakInUse }

/// The invariants (names as in src/PagedKv/Allocation/BlockAllocator.Invariants.cs) that fail on s.
let violations (s: State) : string list =
    let held = s.FreeList @ (Map.values s.HashToBlock |> List.ofSeq) @ (Map.keys s.RefCounts |> List.ofSeq)
    let refZero = [ 0 .. s.Capacity - 1 ] |> List.filter (fun b -> refCount s b = 0)
    [ if held |> List.exists (outOfRange s) then "ids-in-range"
      if List.distinct s.FreeList <> s.FreeList || List.sort s.FreeList <> refZero then "free-list-is-ref-zero"
      if freeCount s + (s.RefCounts |> Map.filter (fun _ r -> r > 0) |> Map.count) <> s.Capacity then "free-plus-live"
      if (Map.values s.HashToBlock |> Seq.distinct |> Seq.length) <> s.HashToBlock.Count then "hash-bijection"
      if s.PeakInUse < inUse s || s.PeakInUse > s.Capacity then "peak-bounds" ]
