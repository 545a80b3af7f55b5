/// Prefix caching over the allocator and sequences, as a pure model: requests admitted with a
/// prompt and a salt, reusing cached blocks from the start of the prompt, growing as tokens are
/// appended, and ended (finished or preempted). Same names as src/PagedKv/Prefix/PrefixCache.cs.
///
/// - hash chain: block i's hash is hash(parent, its tokens), parent = the salt for block 0, else
///   block i−1's hash (salt 0 gives the original's block_hash_chain).
/// - admit q prompt salt: for i < (len − 1) / blockSize (at least one token left to compute), look
///   the block's hash up; stop at a miss, at a block that does not hold exactly these tokens under
///   this salt after the block matched at i−1 still holding the content it had then (a collision:
///   counted, a miss), or at a block with the largest ref count. The matched blocks are acquired
///   (soft-free ones resurrected) in order, then the rest of the prompt's blocks allocated; all or
///   nothing — Refused with the number of blocks missing when the pool is short. The request's
///   length is the matched tokens; the caller computes the rest and appends it.
/// - append q tokens: the missing blocks are allocated (Refused, nothing changed, when short);
///   each block that becomes full gets its chain hash registered, unless a block holds that hash
///   already (the first writer keeps it), and the cache records what it holds.
/// - finish q / preempt q: its blocks are freed last first; its sequence is reset.
///
/// Misuse — an id out of range, a second admit, an unknown request, an empty prompt, a length
/// past what a sequence holds, an append into a request whose partly filled or next blocks another allocator user freed or re-allocated
/// (RequestBlockLost) — is a Fault and changes nothing.
module PagedKv.Spec.PrefixCache

/// The block hash: the original's, or it reduced to `distinct` values (to force collisions).
type Hashing =
    | Sip
    | Colliding of distinct: int

let hash (hashing: Hashing) (parent: uint64) (tokens: uint32 list) =
    match hashing with
    | Sip -> SipHash.blockHash parent tokens
    | Colliding k -> SipHash.blockHash parent tokens % uint64 k

/// What the cache recorded when it registered a block.
type Record =
    { Tokens: uint32 list
      Salt: uint64
      /// The block before it in its request (−1: the first block) and that block's generation then.
      Parent: Allocator.Block
      ParentGeneration: uint32
      /// The block's own generation then: the record describes its content while it is unchanged.
      Generation: uint32 }

type Request =
    { Seq: Sequence.State
      Salt: uint64
      /// Tokens whose KV is computed: the sequence's length.
      Tokens: uint32 list
      /// Chain hash of each full block.
      Hashes: uint64 list
      /// Each table block's generation when it joined the table.
      Generations: uint32 list }

type Stats =
    { Admitted: int64
      Refused: int64
      AppendsRefused: int64
      Finished: int64
      Preempted: int64
      PromptTokens: int64
      ReusedTokens: int64
      Lookups: int64
      Hits: int64
      Collisions: int64
      CrossSaltCollisions: int64
      Registered: int64
      RegistrationsSkipped: int64 }

type State =
    { BlockSize: int
      MaxBlocksPerSeq: int
      Hashing: Hashing
      Requests: Map<int, Request>
      Records: Map<Allocator.Block, Record>
      Stats: Stats }

type AdmitReply =
    | Admitted of computed: int
    | Refused of missing: int

type AppendReply =
    | Appended
    | AppendRefused of missing: int

let private zero =
    { Admitted = 0L; Refused = 0L; AppendsRefused = 0L; Finished = 0L; Preempted = 0L; PromptTokens = 0L; ReusedTokens = 0L
      Lookups = 0L; Hits = 0L; Collisions = 0L; CrossSaltCollisions = 0L; Registered = 0L; RegistrationsSkipped = 0L }

let create (blockSize: int) (maxBlocks: int) (hashing: Hashing) : Result<State, Fault> =
    match Sequence.create blockSize maxBlocks with
    | Error f -> Error f
    | Ok _ -> Ok { BlockSize = blockSize; MaxBlocksPerSeq = maxBlocks; Hashing = hashing; Requests = Map.empty; Records = Map.empty; Stats = zero }

let private outOfRange q = q < 0 || q > Limits.maxSequenceId

let private tooLong (c: State) (length: int64) = length > int64 c.MaxBlocksPerSeq * int64 c.BlockSize || length > int64 System.Int32.MaxValue


/// Whether block b holds exactly these tokens under this salt after this parent (−1: none),
/// both unchanged since the record was made.
let private holds (alloc: Allocator.State) (c: State) b tokens salt parent =
    match Map.tryFind b c.Records with
    | Some r ->
        r.Generation = Allocator.generation alloc b && r.Salt = salt && r.Parent = parent
        && (parent < 0 || r.ParentGeneration = Allocator.generation alloc parent) && r.Tokens = tokens
    | None -> false

let private recordedSalt (c: State) b = Map.tryFind b c.Records |> Option.map (fun r -> r.Salt) |> Option.defaultValue 0UL

/// The prompt's full blocks, each as its token list.
let private chunks (c: State) (tokens: uint32 list) = List.chunkBySize c.BlockSize tokens |> List.filter (fun t -> t.Length = c.BlockSize)

let admit (q: int) (prompt: uint32 list) (salt: uint64) (alloc: Allocator.State, c: State) : Outcome<AdmitReply> * (Allocator.State * State) =
    // Values first (the id, the prompt's length), then the state (docs/protocol.md, order of checks).
    if outOfRange q then Error(Fault(UnknownSequence q)), (alloc, c)
    elif tooLong c (int64 prompt.Length) then Error(Fault(LengthOutOfRange prompt.Length)), (alloc, c)
    elif prompt.IsEmpty then Error(Fault(LengthOutOfRange 0)), (alloc, c)
    elif c.Requests.ContainsKey q then Error(Fault(SequenceExists q)), (alloc, c)
    else
        let reusable = (prompt.Length - 1) / c.BlockSize
        // The longest verified run of cached blocks: (blocks, hashes), and the stats of the lookups.
        let rec matchRun (blocks: (Allocator.Block * uint64) list) parentHash (stats: Stats) (rest: uint32 list list) =
            match rest with
            | tokens :: rest when blocks.Length < reusable ->
                let h = hash c.Hashing parentHash tokens
                let stats = { stats with Lookups = stats.Lookups + 1L }
                let parent = match blocks with (b, _) :: _ -> b | [] -> -1
                match Map.tryFind h alloc.HashToBlock with
                | None -> blocks, stats
                | Some b when not (holds alloc c b tokens salt parent) ->
                    let cross = if recordedSalt c b <> salt then 1L else 0L
                    blocks, { stats with Collisions = stats.Collisions + 1L; CrossSaltCollisions = stats.CrossSaltCollisions + cross }
                | Some b when Allocator.refCount alloc b = Limits.maxRefCount -> blocks, stats
                | Some b -> matchRun ((b, h) :: blocks) h stats rest
            | _ -> blocks, stats
        let matched, stats = matchRun [] salt c.Stats (chunks c prompt)
        let hits = List.rev matched
        let resurrected = hits |> List.filter (fun (b, _) -> Allocator.refCount alloc b = 0) |> List.length
        let fresh = Sequence.blocksForTokens c.BlockSize (int64 prompt.Length) - hits.Length
        let available = Allocator.freeCount alloc - resurrected
        if fresh > available then
            Ok(Refused(fresh - available)), (alloc, { c with Stats = { stats with Refused = stats.Refused + 1L } })
        else
            let alloc = hits |> List.fold (fun a (_, h) -> snd (Allocator.tryAcquireByHash h a)) alloc
            match Allocator.allocateN fresh alloc with
            | Ok planned, alloc ->
                let computed = hits.Length * c.BlockSize
                let seq0 = Sequence.create c.BlockSize c.MaxBlocksPerSeq |> Result.toOption |> Option.get
                let blocks = List.map fst hits @ planned
                let request =
                    { Seq = { seq0 with Blocks = blocks; Len = computed; BytesWritten = 4L * int64 blocks.Length }
                      Salt = salt
                      Tokens = List.take computed prompt
                      Hashes = List.map snd hits
                      Generations = blocks |> List.map (Allocator.generation alloc) }
                let stats =
                    { stats with
                        Admitted = stats.Admitted + 1L
                        PromptTokens = stats.PromptTokens + int64 prompt.Length
                        ReusedTokens = stats.ReusedTokens + int64 computed
                        Hits = stats.Hits + int64 hits.Length }
                Ok(Admitted computed), (alloc, { c with Requests = Map.add q request c.Requests; Stats = stats })
            | Error _, _ -> failwith "unreachable: the pool was checked to cover the prompt"

/// Registers each block of request r that has become full, in order.
let private registerFull (alloc: Allocator.State, c: State) (r: Request) =
    let full = chunks c r.Tokens
    let register (alloc: Allocator.State, c: State, r: Request) (i: int) =
        let tokens = full[i]
        let h = hash c.Hashing (if i = 0 then r.Salt else List.last r.Hashes) tokens
        let r = { r with Hashes = r.Hashes @ [ h ] }
        if alloc.HashToBlock.ContainsKey h then
            alloc, { c with Stats = { c.Stats with RegistrationsSkipped = c.Stats.RegistrationsSkipped + 1L } }, r
        else
            let b = r.Seq.Blocks[i]
            let parent = if i = 0 then -1 else r.Seq.Blocks[i - 1]
            let record =
                { Tokens = tokens; Salt = r.Salt; Parent = parent
                  ParentGeneration = (if parent < 0 then 0u else Allocator.generation alloc parent)
                  Generation = Allocator.generation alloc b }
            let _, alloc = Allocator.registerBlockHash b h alloc
            alloc, { c with Records = Map.add b record c.Records; Stats = { c.Stats with Registered = c.Stats.Registered + 1L } }, r
    List.fold register (alloc, c, r) [ r.Hashes.Length .. full.Length - 1 ]

let append (q: int) (tokens: uint32 list) (alloc: Allocator.State, c: State) : Outcome<AppendReply> * (Allocator.State * State) =
    match Map.tryFind q c.Requests with
    | _ when outOfRange q -> Error(Fault(UnknownSequence q)), (alloc, c)
    | None -> Error(Fault(UnknownSequence q)), (alloc, c)
    | Some r ->
        let length = int64 r.Tokens.Length + int64 tokens.Length
        // Every block holding or receiving the request's tokens past its full blocks (the partly
        // filled one it continues, and those it fills) must still be the request's own.
        let lost =
            [ r.Tokens.Length / c.BlockSize .. min (Sequence.blocksForTokens c.BlockSize length) r.Seq.Blocks.Length - 1 ]
            |> List.tryFind (fun i ->
                let b = r.Seq.Blocks[i]
                Allocator.refCount alloc b = 0 || Allocator.generation alloc b <> r.Generations[i])
        if tooLong c length then Error(Fault(LengthOutOfRange(int (min length (int64 System.Int32.MaxValue))))), (alloc, c)
        elif lost.IsSome then Error(Fault(RequestBlockLost r.Seq.Blocks[lost.Value])), (alloc, c)
        else
            let missing = Sequence.blocksForTokens c.BlockSize length - r.Seq.Blocks.Length
            if missing > 0 && Allocator.freeCount alloc < missing then
                Ok(AppendRefused(missing - Allocator.freeCount alloc)), (alloc, { c with Stats = { c.Stats with AppendsRefused = c.Stats.AppendsRefused + 1L } })
            else
                let added, alloc = if missing > 0 then (match Allocator.allocateN missing alloc with Ok bs, a -> bs, a | Error _, a -> [], a) else [], alloc
                let seq = { r.Seq with Blocks = r.Seq.Blocks @ added; Len = int length; BytesWritten = r.Seq.BytesWritten + 4L * int64 added.Length }
                let generations = r.Generations @ (added |> List.map (Allocator.generation alloc))
                let alloc, c, r = registerFull (alloc, c) { r with Tokens = r.Tokens @ tokens; Seq = seq; Generations = generations }
                Ok Appended, (alloc, { c with Requests = Map.add q r c.Requests })

/// Ends request q: its blocks freed last first.
let private finishOrPreempt (q: int) (count: Stats -> Stats) (alloc: Allocator.State, c: State) : Outcome<unit> * (Allocator.State * State) =
    match Map.tryFind q c.Requests with
    | _ when outOfRange q -> Error(Fault(UnknownSequence q)), (alloc, c)
    | None -> Error(Fault(UnknownSequence q)), (alloc, c)
    | Some r ->
        match Allocator.free (List.rev r.Seq.Blocks) alloc with
        | Error e, _ -> Error e, (alloc, c)
        | Ok(), alloc -> Ok(), (alloc, { c with Requests = Map.remove q c.Requests; Stats = count c.Stats })

let finish q state = finishOrPreempt q (fun s -> { s with Finished = s.Finished + 1L }) state

let preempt q state = finishOrPreempt q (fun s -> { s with Preempted = s.Preempted + 1L }) state
