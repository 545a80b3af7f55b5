/// The block allocator, as a pure model. Read this first when porting.
///
/// State: capacity; the free list, held top first (its head is the block allocate takes when no
/// preference applies; `snapshot` and the protocol show it bottom → top); a ref count per block
/// (0 = free); the hash table hash → block (block → hash is its inverse); peak = most blocks ever
/// in use; a generation per block (how often allocate handed it out: its content overwritten);
/// the free-order policy.
///
/// - create policy c: every block free, ref 0, no hashes; free list 0, 1, …, c−1 from the top, so
///   allocations on a fresh allocator yield 0, 1, 2, … under either policy.
/// - allocate: the policy chooses a free entry (FreeOrder.choose) and removes it
///   (FreeOrder.remove); its stale hash is dropped (its content is about to be overwritten);
///   ref = 1; its generation + 1; peak = max(peak, in use). Exhausted when nothing is free.
/// - allocateN n: Exhausted (nothing taken) when fewer than n are free; else n × allocate.
/// - free bs: for each b in order, ref − 1; at 0, b goes back to the free list where the policy
///   puts it (FreeOrder.release), keeping its hash (soft-free).
/// - acquire b / acquireMany bs: ref + 1 for each.
/// - tryAcquireByHash h: miss → None. Live block → ref + 1. Soft-free block → removed from the
///   free list (FreeOrder.remove), ref = 1, peak updated.
/// - registerBlockHash b h: b's old hash is dropped, then h → b; if h was another block's, that
///   block loses it (last writer wins), and if it is free the policy hears of it
///   (FreeOrder.hashDropped). The same hash again changes nothing.
///
/// Misuse is a Fault and changes nothing: arguments are checked before state, and in a batch
/// the first offender in batch order is reported. Batches are all or nothing.
module PagedKv.Spec.Allocator

type Block = int
type Hash = uint64

/// Which free block allocate takes, and where a freed block goes.
type Policy =
    /// The original's (ferrum paged_pool.rs): a stack, most recently freed first, preferring a
    /// block with no hash so that soft-free blocks keep their content as long as possible.
    | LifoPreferUnhashed
    /// vLLM v1's free queue: least recently used first. Hashed blocks queue at the tail (kept
    /// longest), unhashed ones at the head (reused first).
    | Lru

type State =
    { Policy: Policy
      Capacity: int
      /// Top first: the head is taken next when no preference applies.
      FreeList: Block list
      RefCounts: Map<Block, int>
      HashToBlock: Map<Hash, Block>
      PeakInUse: int
      /// Times each block was handed out by an allocation (absent: 0).
      Generations: Map<Block, uint32> }

/// Each policy's free order, in a few pure lines, on the free list held top first (index 0 =
/// top; for Lru the top is the head of the queue and the last entry its tail).
module FreeOrder =
    /// Remove the entry at index i (0 = top) by swap-remove: the top entry moves into slot i.
    let private swapRemove i (stack: Block list) =
        match stack with
        | top :: below when i > 0 -> List.updateAt (i - 1) top below
        | _ -> List.tail stack

    /// Where a block whose ref count just reached 0 goes.
    let release policy (hasHash: bool) (b: Block) (free: Block list) =
        match policy with
        | LifoPreferUnhashed -> b :: free // on top
        | Lru when hasHash -> free @ [ b ] // the tail: reused last
        | Lru -> b :: free // the head: reused first

    /// The index of the entry allocate takes. Precondition: free is not empty.
    let choose policy (hashed: Block -> bool) (free: Block list) =
        match policy with
        | LifoPreferUnhashed -> List.tryFindIndex (hashed >> not) free |> Option.defaultValue 0 // nearest the top with no hash, else the top
        | Lru -> 0 // the head

    /// Remove the entry at index i (allocate's choice, or a hash hit's block).
    let remove policy (i: int) (free: Block list) =
        match policy with
        | LifoPreferUnhashed -> swapRemove i free
        | Lru -> List.removeAt i free // unlinked; the queue keeps its order

    /// A free block has just lost its hash (another block took the hash over).
    let hashDropped policy (b: Block) (free: Block list) =
        match policy with
        | LifoPreferUnhashed -> free // the stack does not move; choose asks at take time
        | Lru -> b :: List.filter ((<>) b) free // to the head, as an unhashed release

let refCount (s: State) (b: Block) = Map.tryFind b s.RefCounts |> Option.defaultValue 0
let freeCount (s: State) = s.FreeList.Length
let inUse (s: State) = s.Capacity - freeCount s
let generation (s: State) (b: Block) = Map.tryFind b s.Generations |> Option.defaultValue 0u
let hashOf (s: State) (b: Block) = s.HashToBlock |> Map.tryFindKey (fun _ holder -> holder = b)
let private hashed (s: State) (b: Block) = (hashOf s b).IsSome

let private withRef b r s =
    { s with RefCounts = if r = 0 then Map.remove b s.RefCounts else Map.add b r s.RefCounts }

let private raisePeak s = { s with PeakInUse = max s.PeakInUse (inUse s) }

let private dropHash b s =
    match hashOf s b with
    | Some h -> { s with HashToBlock = Map.remove h s.HashToBlock }
    | None -> s

let private outOfRange s b = b < 0 || b >= s.Capacity

/// The block of a batch that first asks too much: a block may occur `allowed b` times; of the
/// blocks that occur more often, the one whose first excess occurrence comes earliest in the batch.
let private firstOffender (allowed: Block -> int) (blocks: Block list) : Block option =
    /// The batch position of b's occurrence number k (0-based).
    let rec position b k i rest =
        match rest with
        | x :: tail when x = b -> if k = 0 then i else position b (k - 1) (i + 1) tail
        | _ :: tail -> position b k (i + 1) tail
        | [] -> failwith "fewer occurrences than counted"
    blocks
    |> List.countBy id
    |> List.filter (fun (b, n) -> n > allowed b)
    |> List.map (fun (b, _) -> b, position b (allowed b) 0 blocks)
    |> List.sortBy snd
    |> List.tryHead
    |> Option.map fst

let create (policy: Policy) (capacity: int) : Result<State, Fault> =
    if capacity < 0 || capacity > Limits.maxCapacity then
        Error(CapacityOutOfRange capacity)
    else
        Ok { Policy = policy; Capacity = capacity; FreeList = [ 0 .. capacity - 1 ]; RefCounts = Map.empty; HashToBlock = Map.empty; PeakInUse = 0; Generations = Map.empty }

/// Take the free entry at index i for a new owner: off the free list, stale hash dropped, ref 1,
/// next generation.
let private takeAt i s =
    let b = List.item i s.FreeList
    let s' = { s with FreeList = FreeOrder.remove s.Policy i s.FreeList; Generations = Map.add b (generation s b + 1u) s.Generations }
    b, s' |> dropHash b |> withRef b 1

/// allocate's choice. Precondition: the free list is not empty.
let private take s = takeAt (FreeOrder.choose s.Policy (hashed s) s.FreeList) s

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

/// An allocation whose blocks someone else chose (a port checked with `--profile any`): legal
/// when the blocks are distinct and free; the state becomes what allocating exactly them gives.
let allocateChosen (blocks: Block list) (s: State) : Result<State, string> =
    match blocks |> List.tryFind (fun b -> outOfRange s b || refCount s b <> 0) with
    | Some b -> Error(sprintf "block %d is not a free block" b)
    | None when List.distinct blocks <> blocks -> Error "a block is handed out twice in one allocation"
    | None ->
        let takeBlock st b = snd (takeAt (List.findIndex ((=) b) st.FreeList) st)
        Ok(raisePeak (List.fold takeBlock s blocks))

let free (blocks: Block list) (s: State) : Outcome<unit> * State =
    let release st b =
        let r = refCount st b - 1
        let st = withRef b r st
        if r = 0 then { st with FreeList = FreeOrder.release st.Policy (hashed st b) b st.FreeList } else st
    match List.tryFind (outOfRange s) blocks with
    | Some b -> Error(Fault(BlockOutOfRange b)), s
    | None ->
        // A block may be freed as often as it has references.
        match firstOffender (refCount s) blocks with
        | Some b -> Error(Fault(FreeOfFreeBlock b)), s
        | None -> Ok(), List.fold release s blocks

let acquireMany (blocks: Block list) (s: State) : Outcome<unit> * State =
    // A free block may not be acquired at all; a live one up to the largest ref count.
    let allowed b = if refCount s b = 0 then 0 else Limits.maxRefCount - refCount s b
    match List.tryFind (outOfRange s) blocks with
    | Some b -> Error(Fault(BlockOutOfRange b)), s
    | None ->
        match firstOffender allowed blocks with
        | Some b when refCount s b = 0 -> Error(Fault(AcquireOfFreeBlock b)), s
        | Some b -> Error(Fault(RefCountOverflow b)), s
        | None -> Ok(), blocks |> List.countBy id |> List.fold (fun st (b, k) -> withRef b (refCount st b + k) st) s

let acquire (b: Block) (s: State) = acquireMany [ b ] s

let tryAcquireByHash (h: Hash) (s: State) : Outcome<Block option> * State =
    match Map.tryFind h s.HashToBlock with
    | None -> Ok None, s
    | Some b when refCount s b = 0 ->
        let i = List.findIndex ((=) b) s.FreeList
        Ok(Some b), raisePeak (withRef b 1 { s with FreeList = FreeOrder.remove s.Policy i s.FreeList })
    | Some b when refCount s b = Limits.maxRefCount -> Error(Fault(RefCountOverflow b)), s
    | Some b -> Ok(Some b), withRef b (refCount s b + 1) s

let registerBlockHash (b: Block) (h: Hash) (s: State) : Outcome<unit> * State =
    if outOfRange s b then Error(Fault(BlockOutOfRange b)), s
    elif refCount s b = 0 then Error(Fault(RegisterOnFreeBlock b)), s
    else
        let s' = dropHash b s
        let s' =
            match Map.tryFind h s'.HashToBlock with
            | Some other when refCount s' other = 0 -> { s' with FreeList = FreeOrder.hashDropped s'.Policy other s'.FreeList }
            | _ -> s'
        Ok(), { s' with HashToBlock = Map.add h b s'.HashToBlock }

let refCountOf (b: Block) (s: State) : Outcome<int> =
    if outOfRange s b then Error(Fault(BlockOutOfRange b)) else Ok(refCount s b)

/// Full observable state, the form both sides are compared in. The per-block fields are arrays
/// (compared element by element like lists, with `=`): the differential runner builds and compares
/// two of these after every step, and at a capacity of thousands lists would dominate its cost.
type Snapshot =
    { Capacity: int
      /// Bottom → top (as the protocol's `state` shows it).
      FreeList: Block[]
      /// By block id.
      RefCounts: int[]
      HashTable: (Hash * Block) list
      PeakInUse: int
      /// By block id. Not in the protocol's `state`.
      Generations: uint32[] }

/// A per-block map by block id 0 … capacity − 1, `absent` where the map has no entry
/// (`Array.init capacity (refCount s)`, in O(capacity) rather than O(capacity log capacity)).
let private byBlock (capacity: int) (absent: 'v) (m: Map<Block, 'v>) : 'v[] =
    let values = Array.create capacity absent
    m |> Map.iter (fun b v -> if b >= 0 && b < capacity then values[b] <- v)
    values

let snapshot (s: State) : Snapshot =
    { Capacity = s.Capacity
      FreeList = Array.rev (Array.ofList s.FreeList)
      RefCounts = byBlock s.Capacity 0 s.RefCounts
      HashTable = Map.toList s.HashToBlock
      PeakInUse = s.PeakInUse
      Generations = byBlock s.Capacity 0u s.Generations }

/// The invariants (names as in src/PagedKv/Allocation/BlockAllocator.Invariants.cs) that fail on s.
/// (RefCounts holds exactly the blocks with references: withRef removes a block at 0.)
let violations (s: State) : string list =
    let outside = outOfRange s
    [ if List.exists outside s.FreeList || Map.exists (fun _ b -> outside b) s.HashToBlock || Map.exists (fun b _ -> outside b) s.RefCounts then
          "ids-in-range"
      if (List.distinct s.FreeList).Length <> s.FreeList.Length || List.exists s.RefCounts.ContainsKey s.FreeList then "free-list-is-ref-zero"
      if s.FreeList.Length + s.RefCounts.Count <> s.Capacity || Map.exists (fun _ r -> r <= 0) s.RefCounts then "free-plus-live"
      if (Map.values s.HashToBlock |> Seq.distinct |> Seq.length) <> s.HashToBlock.Count then "hash-bijection"
      if s.PeakInUse < inUse s || s.PeakInUse > s.Capacity then "peak-bounds" ]
