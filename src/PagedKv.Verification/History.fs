/// Random histories. Operations are generated abstractly — block ids as indexes into the
/// model's live or free blocks at the moment the op runs — and resolved against the model,
/// so that removing an op while shrinking keeps the rest meaningful and argument shrinking
/// works too.
namespace PagedKv.Verification

open System
open FsCheck
open FsCheck.FSharp
open PagedKv.Spec

type Pick =
    /// The i-th live block (ascending, modulo their number); a raw id when none is live.
    | Live of int
    /// The i-th free block (in free-list order, modulo their number); a raw id when none is free.
    | Freed of int
    /// This id as it is: possibly out of range.
    | Raw of int
    /// The i-th block (modulo their number) of sequence q; the i-th live block when q has none.
    | SeqBlock of q: int * i: int

type AOp =
    | GNew of capacity: int
    | GAllocate
    | GAllocateN of n: int
    | GFree of Pick list
    | GAcquire of Pick
    | GAcquireMany of (Pick * int) list
    /// acquire_many of one block as often as brings its ref count to the limit, plus `offset`
    /// (≤ 0: a bulk acquire that fits; > 0: one that overflows).
    | GAcquireToLimit of Pick * offset: int
    | GRegister of Pick * hash: int
    | GTryAcquire of hash: int
    | GRefCount of Pick
    | GQuery of int
    /// block_hash with the i-th pool hash as parent.
    | GBlockHash of parent: int * tokens: uint32 list
    | GBlockHashChain of tokens: uint32 list * blockSize: int
    | GSeqNew of q: int * blockSize: int * maxBlocks: int
    /// Target length in tokens, as is.
    | GSeqEnsure of q: int * target: int
    /// Length as a percentage of what the sequence's blocks hold (over 100 or negative: invalid).
    | GSeqSetLen of q: int * percent: int
    | GSeqAdvance of q: int * tokens: int
    | GSeqSync of q: int
    | GSeqRelease of q: int
    | GPrefixNew of blockSize: int * maxBlocks: int * collide: int
    /// req_admit of request q: turn `turn` of conversation `conv` of `tenant`, after system
    /// prompt `system` (shared by tenants); salted with the tenant (or unsalted).
    | GAdmit of q: int * tenant: int * system: int * conv: int * turn: int * salted: bool
    /// req_append of request q: the next n tokens of its script (its prompt, then its reply);
    /// n < 0: the rest of its prompt.
    | GAppend of q: int * n: int
    | GFinish of q: int
    | GPreempt of q: int
    /// The op with its k-th device copy made to fail.
    | GFaulty of AOp * copy: int

/// A history: a fresh allocator of this capacity and free-order policy, then the ops.
type History = { Capacity: int; Policy: Allocator.Policy; Ops: AOp list }

module History =
    /// A few hashes, so that hits, resurrections, re-registrations and collisions are common.
    let hashPool =
        [| 0UL; 1UL; 0xDEADBEEFUL; UInt64.MaxValue; 0x8000000000000000UL
           SipHash.blockHash 0UL [ 1u; 2u; 3u; 4u ]; 42UL; 0x0123456789ABCDEFUL |]

    let hashAt i = hashPool[((i % hashPool.Length) + hashPool.Length) % hashPool.Length]

    let private nth (xs: int list) i fallback =
        if xs.IsEmpty then fallback else xs[((i % xs.Length) + xs.Length) % xs.Length]

    let resolvePick (w: Model.World) (p: Pick) =
        let s = w.Alloc
        // Live blocks ascending: the ref-count map holds exactly the blocks with references.
        let live () = s.RefCounts |> Map.keys |> List.ofSeq
        match p with
        | Live i -> nth (live ()) i i
        | Freed i -> nth s.FreeList i i
        | Raw i -> i
        | SeqBlock(q, i) ->
            match Map.tryFind q w.Seqs with
            | Some seq when not seq.Blocks.IsEmpty -> nth seq.Blocks i i
            | _ -> nth (live ()) i i

    /// Request ids 0–7: q ∈ [0, 7] picks the q-th admitted request (modulo their number); any other
    /// q is taken as it is (an id not in use, or out of range).
    let private liveRequest (w: Model.World) (q: int) =
        let live = w.Prefix |> Option.map (fun c -> List.ofSeq c.Requests.Keys) |> Option.defaultValue []
        if q >= 0 && q <= 7 && not live.IsEmpty then nth live q q else q

    /// q ∈ [0, 7] picks the q-th id in 0–7 not in use (modulo their number); any other q as it is.
    let private freeRequest (w: Model.World) (q: int) =
        let inUse = w.Prefix |> Option.map (fun c -> c.Requests) |> Option.defaultValue Map.empty
        let free = [ for i in 0..7 do if not (inUse.ContainsKey i) then i ]
        if q >= 0 && q <= 7 && not free.IsEmpty then nth free q q else q

    /// The concrete op an abstract op stands for in world w, and the device copy to fail, if any.
    let rec resolveWithFault (w: Model.World) (op: AOp) : Op * int option =
        match op with
        | GFaulty(inner, k) -> fst (resolveWithFault w inner), Some k
        | _ -> resolve w op, None

    /// The concrete op an abstract op stands for in world w.
    and resolve (w: Model.World) (op: AOp) : Op =
        let pick = resolvePick w
        match op with
        | GNew c -> New(c, w.Alloc.Policy)
        | GAllocate -> Allocate
        | GAllocateN n -> AllocateN n
        | GFree ps -> Free(List.map pick ps)
        | GAcquire p -> Acquire(pick p)
        | GAcquireMany ps -> AcquireMany(ps |> List.collect (fun (p, k) -> List.replicate k (pick p)))
        | GAcquireToLimit(p, offset) ->
            let b = pick p
            let times = Limits.maxRefCount - Allocator.refCount w.Alloc b + offset
            AcquireMany(List.replicate (max 1 times) b)
        | GRegister(p, h) -> RegisterBlockHash(pick p, hashAt h)
        | GTryAcquire h -> TryAcquireByHash(hashAt h)
        | GRefCount p -> RefCount(pick p)
        | GQuery 0 -> FreeCount
        | GQuery 1 -> Capacity
        | GQuery 2 -> PeakInUse
        | GQuery _ -> HashTableSize
        | GBlockHash(p, ts) -> BlockHash(hashAt p, ts)
        | GBlockHashChain(ts, bs) -> BlockHashChain(ts, bs)
        | GSeqNew(q, bs, mb) -> SeqNew(q, bs, mb)
        | GSeqEnsure(q, t) -> SeqEnsureCapacity(q, t)
        | GSeqSetLen(q, pct) ->
            let capacity = w.Seqs.TryFind q |> Option.map Sequence.tokenCapacity |> Option.defaultValue 0L
            SeqSetLen(q, int (capacity * int64 pct / 100L) + (if pct > 100 then 1 else 0) - (if pct < 0 then 1 else 0))
        | GSeqAdvance(q, k) -> SeqAdvanceLen(q, k)
        | GSeqSync q -> SeqSync q
        | GSeqRelease q -> SeqRelease q
        | GPrefixNew(bs, mb, k) -> PrefixNew(bs, mb, k)
        | GAdmit(q, tenant, system, conv, turn, salted) ->
            let blockSize = w.Prefix |> Option.map (fun c -> c.BlockSize) |> Option.defaultValue 4
            ReqAdmit(freeRequest w q, Serving.prompt blockSize system conv turn, if salted then Serving.salt tenant else 0UL)
        | GAppend(q, n) ->
            let q = liveRequest w q
            let script = w.Prompts.TryFind q |> Option.map Serving.script |> Option.defaultValue []
            let computed = w.Prefix |> Option.bind (fun c -> c.Requests.TryFind q) |> Option.map (fun r -> r.Tokens.Length) |> Option.defaultValue 0
            let promptLength = w.Prompts.TryFind q |> Option.map List.length |> Option.defaultValue 0
            let n = if n < 0 then max 1 (promptLength - computed) else n
            ReqAppend(q, List.init n (fun i -> Serving.tokenAt script (computed + i)))
        | GFinish q -> ReqFinish(liveRequest w q)
        | GPreempt q -> ReqPreempt(liveRequest w q)
        | GFaulty(inner, _) -> resolve w inner

    let private genPick (capacity: int) =
        Gen.frequency
            [ 80, Gen.choose (0, 1000) |> Gen.map Live
              12, Gen.choose (0, 1000) |> Gen.map Freed
              8, Gen.choose (-3, capacity + 3) |> Gen.map Raw ]

    let genCapacity =
        Gen.frequency
            [ 10, Gen.choose (0, 4)
              60, Gen.choose (1, 16)
              22, Gen.choose (17, 64)
              3, Gen.choose (65, 4096) ]

    /// Token lists for the hashing ops: 0–24 tokens, small ids or any u32.
    let genTokens: Gen<uint32 list> =
        Gen.choose (0, 24)
        |> Gen.bind (fun n -> Gen.listOfLength n (Gen.frequency [ 3, Gen.choose (0, 50) |> Gen.map uint32; 1, Gen.choose64 (0L, int64 UInt32.MaxValue) |> Gen.map uint32 ]))

    let private genOrdinaryOp (capacity: int) : Gen<AOp> =
        let pick = genPick capacity
        let hash = Gen.choose (0, hashPool.Length - 1)
        let bulk =
            Gen.frequency
                [ 99, Gen.choose (1, 3)
                  1, Gen.elements [ Limits.maxRefCount - 1; Limits.maxRefCount; Limits.maxRefCount + 1 ] ]
        Gen.frequency
            [ 18, Gen.constant GAllocate
              7, Gen.frequency [ 85, Gen.choose (0, 4); 10, Gen.choose (0, capacity + 2); 5, Gen.choose (-3, -1) ] |> Gen.map GAllocateN
              18, Gen.choose (1, 3) |> Gen.bind (fun n -> Gen.listOfLength n pick) |> Gen.map GFree
              6, pick |> Gen.map GAcquire
              4, Gen.choose (1, 3) |> Gen.bind (fun n -> Gen.listOfLength n (Gen.zip pick bulk)) |> Gen.map GAcquireMany
              14, Gen.zip pick hash |> Gen.map GRegister
              14, hash |> Gen.map GTryAcquire
              4, pick |> Gen.map GRefCount
              4, Gen.choose (0, 3) |> Gen.map GQuery
              2, Gen.zip hash genTokens |> Gen.map GBlockHash
              2, Gen.zip genTokens (Gen.frequency [ 90, Gen.choose (1, 8); 10, Gen.elements [ 0; -1; Limits.maxBlockSize; Limits.maxBlockSize + 1 ] ]) |> Gen.map GBlockHashChain
              1, Gen.frequency [ 3, genCapacity; 1, Gen.elements [ -1; Limits.maxCapacity + 1; Int32.MinValue ] ] |> Gen.map GNew ]

    /// Allocator ops; one in 2,000 brings a block to the ref-count limit (or one past it): rare,
    /// as each names a block some 65,535 times.
    let genOp (capacity: int) : Gen<AOp> =
        Gen.frequency
            [ 1999, genOrdinaryOp capacity
              1, Gen.zip (genPick capacity) (Gen.elements [ -1; 0; 0; 1 ]) |> Gen.map GAcquireToLimit ]

    /// Sequence ids: mostly 0–3 (so sequences are reused), sometimes out of range.
    let private genSeqId = Gen.frequency [ 97, Gen.choose (0, 2); 3, Gen.elements [ -1; Limits.maxSequenceId + 1; 3 ] ]

    let private genSeqShape = Gen.zip (Gen.choose (1, 8)) (Gen.choose (1, 8))

    let genSeqOp: Gen<AOp> =
        let q = genSeqId
        let op =
            Gen.frequency
                [ 8, Gen.zip3 q (Gen.frequency [ 95, Gen.choose (1, 8); 5, Gen.elements [ 0; -1; Limits.maxBlockSize + 1 ] ])
                              (Gen.frequency [ 95, Gen.choose (1, 8); 5, Gen.elements [ 0; Limits.maxBlocksPerSeq + 1 ] ])
                  |> Gen.map GSeqNew
                  30, Gen.zip q (Gen.frequency [ 75, Gen.choose (0, 24); 17, Gen.choose (25, 80); 4, Gen.choose (-3, -1); 4, Gen.constant Int32.MaxValue ]) |> Gen.map GSeqEnsure
                  14, Gen.zip q (Gen.frequency [ 90, Gen.choose (0, 100); 6, Gen.choose (101, 150); 4, Gen.choose (-20, -1) ]) |> Gen.map GSeqSetLen
                  8, Gen.zip q (Gen.frequency [ 88, Gen.choose (0, 8); 10, Gen.choose (-10, 40); 2, Gen.elements [ Int32.MaxValue; Int32.MinValue ] ]) |> Gen.map GSeqAdvance
                  16, q |> Gen.map GSeqSync
                  12, q |> Gen.map GSeqRelease ]
        Gen.frequency [ 82, op; 18, Gen.zip op (Gen.choose (0, 1)) |> Gen.map GFaulty ]

    /// Allocator ops on sequences' blocks too (hash registration, sharing, frees by other owners).
    let private genSharingOp: Gen<AOp> =
        let seqBlock = Gen.zip genSeqId (Gen.choose (0, 100)) |> Gen.map SeqBlock
        Gen.frequency
            [ 4, Gen.zip seqBlock (Gen.choose (0, hashPool.Length - 1)) |> Gen.map GRegister
              2, seqBlock |> Gen.map GAcquire
              2, seqBlock |> Gen.map (fun p -> GFree [ p ]) ]

    /// Either policy, half the time each.
    let genPolicy = Gen.elements [ Allocator.LifoPreferUnhashed; Allocator.Lru ]

    /// Histories of 1–200 ops on a capacity drawn by genCapacity.
    let private genWith (policy: Gen<Allocator.Policy>) (genOpFor: int -> Gen<AOp>) : Gen<History> =
        gen {
            let! policy = policy
            let! capacity = genCapacity
            let! length = Gen.choose (1, 200)
            let! ops = Gen.listOfLength length (genOpFor capacity)
            return { Capacity = capacity; Policy = policy; Ops = ops }
        }

    /// Allocator-only histories under `policy`.
    let genFor (policy: Allocator.Policy) : Gen<History> = genWith (Gen.constant policy) genOp

    /// Allocator-only histories, either policy.
    let gen: Gen<History> = genWith genPolicy genOp

    /// One allocator (policy drawn by `policy`) and several sequences on a device, interleaved;
    /// sequences 0–2 are created first (those ops shrink away like any other).
    let genWithSequencesOf (policy: Gen<Allocator.Policy>) : Gen<History> =
        GenBuilder.gen {
            let! policy = policy
            let! capacity = Gen.frequency [ 3, genCapacity; 7, Gen.choose (8, 64) ]
            let! shapes = Gen.listOfLength 3 genSeqShape
            let! length = Gen.choose (1, 200)
            let! ops = Gen.listOfLength length (Gen.frequency [ 50, genOp capacity; 40, genSeqOp; 10, genSharingOp ])
            let prologue = shapes |> List.mapi (fun q (bs, mb) -> GSeqNew(q, bs, mb))
            return { Capacity = capacity; Policy = policy; Ops = prologue @ ops }
        }

    let genWithSequences: Gen<History> = genWithSequencesOf genPolicy

    /// Request picks: mostly 0–7 (resolved to a live or a free id), sometimes an id not in use or out of range.
    let private genRequestId = Gen.frequency [ 95, Gen.choose (0, 7); 5, Gen.elements [ -1; 8; Limits.maxSequenceId + 1 ] ]

    /// Serving ops on a prefix cache: tenants sharing system prompts, multi-turn conversations that
    /// resend their history, prefill and decode as appends, finishes and preemptions, sometimes a
    /// device copy made to fail.
    let genRequestOp: Gen<AOp> =
        let q = genRequestId
        let admit =
            GenBuilder.gen {
                let! q = q
                let! tenant = Gen.choose (0, 2)
                let! system = Gen.choose (0, 1)
                let! conv = Gen.choose (0, 3)
                let! turn = Gen.frequency [ 95, Gen.choose (0, 3); 5, Gen.elements [ -1; 40 ] ]
                let! salted = Gen.frequency [ 9, Gen.constant true; 1, Gen.constant false ]
                return GAdmit(q, tenant, system, conv, turn, salted)
            }
        let op =
            Gen.frequency
                [ 30, admit
                  30, Gen.zip q (Gen.frequency [ 1, Gen.constant -1; 1, Gen.choose (1, 3) ]) |> Gen.map GAppend
                  12, q |> Gen.map GFinish
                  6, q |> Gen.map GPreempt ]
        Gen.frequency [ 92, op; 8, Gen.zip op (Gen.choose (0, 1)) |> Gen.map GFaulty ]

    /// One allocator (policy drawn by `policy`) and a prefix cache over it (sometimes with hashes
    /// reduced to a few values, so that lookups meet collisions), serving requests; allocator ops
    /// interleaved.
    let genWithRequestsOf (policy: Gen<Allocator.Policy>) : Gen<History> =
        GenBuilder.gen {
            let! policy = policy
            let! capacity = Gen.frequency [ 8, Gen.choose (8, 64); 2, Gen.choose (65, 160) ]
            let! blockSize = Gen.choose (1, 4)
            let! maxBlocks = Gen.choose (4, 32)
            let! collide = Gen.frequency [ 7, Gen.constant 0; 3, Gen.elements [ 1; 2; 4 ] ]
            let! length = Gen.choose (1, 200)
            let! ops = Gen.listOfLength length (Gen.frequency [ 85, genRequestOp; 15, genOrdinaryOp capacity |> Gen.filter (function GNew _ -> false | _ -> true) ])
            return { Capacity = capacity; Policy = policy; Ops = GPrefixNew(blockSize, maxBlocks, collide) :: ops }
        }

    let genWithRequests: Gen<History> = genWithRequestsOf genPolicy

    /// Prefix-cache histories with sequences beside the cache: sequences 0–2 created after
    /// prefix_new, and a sequence op after every third op (both draw on the one allocator).
    let genWithRequestsAndSequencesOf (policy: Gen<Allocator.Policy>) : Gen<History> =
        GenBuilder.gen {
            let! h = genWithRequestsOf policy
            let! shapes = Gen.listOfLength 3 genSeqShape
            let! seqOps = Gen.listOfLength (h.Ops.Length / 3 + 1) genSeqOp
            let prefixNew, rest = List.head h.Ops, List.tail h.Ops
            let prologue = shapes |> List.mapi (fun q (bs, mb) -> GSeqNew(q, bs, mb))
            let mixed = rest |> List.chunkBySize 3 |> List.mapi (fun i chunk -> chunk @ [ seqOps[i] ]) |> List.concat
            return { h with Ops = prefixNew :: prologue @ mixed }
        }

    let private shrinkInt (n: int) = seq { if n <> 0 then yield 0; if abs n > 1 then yield n / 2 }

    let private shrinkPick p =
        match p with
        | Live i -> shrinkInt i |> Seq.map Live
        | Freed i -> Seq.append (Seq.singleton (Live i)) (shrinkInt i |> Seq.map Freed)
        | Raw i -> Seq.append (Seq.singleton (Live 0)) (shrinkInt i |> Seq.map Raw)
        | SeqBlock(q, i) -> Seq.append (Seq.singleton (Live i)) (shrinkInt i |> Seq.map (fun i' -> SeqBlock(q, i')))

    let private removals (xs: 'a list) = seq { if xs.Length > 1 then for i in 0 .. xs.Length - 1 -> List.removeAt i xs }

    let rec private shrinkOp op =
        match op with
        | GAllocateN n -> shrinkInt n |> Seq.map GAllocateN
        | GFree ps -> Seq.append (removals ps) (ps |> Seq.mapi (fun i p -> shrinkPick p |> Seq.map (fun p' -> List.updateAt i p' ps)) |> Seq.concat) |> Seq.map GFree
        | GAcquire p -> shrinkPick p |> Seq.map GAcquire
        | GAcquireToLimit(p, offset) -> Seq.append (Seq.singleton (GAcquire p)) (shrinkPick p |> Seq.map (fun p' -> GAcquireToLimit(p', offset)))
        | GAcquireMany ps ->
            let smaller = ps |> Seq.mapi (fun i (p, k) -> Seq.append (shrinkPick p |> Seq.map (fun p' -> p', k)) (shrinkInt k |> Seq.filter ((<) 0) |> Seq.map (fun k' -> p, k')) |> Seq.map (fun x -> List.updateAt i x ps)) |> Seq.concat
            Seq.append (removals ps) smaller |> Seq.map GAcquireMany
        | GRegister(p, h) -> Seq.append (shrinkPick p |> Seq.map (fun p' -> GRegister(p', h))) (shrinkInt h |> Seq.map (fun h' -> GRegister(p, h')))
        | GTryAcquire h -> shrinkInt h |> Seq.map GTryAcquire
        | GRefCount p -> shrinkPick p |> Seq.map GRefCount
        | GNew c -> shrinkInt c |> Seq.map GNew
        | GSeqNew(q, bs, mb) ->
            Seq.append (shrinkInt bs |> Seq.filter ((<) 0) |> Seq.map (fun bs' -> GSeqNew(q, bs', mb)))
                       (shrinkInt mb |> Seq.filter ((<) 0) |> Seq.map (fun mb' -> GSeqNew(q, bs, mb')))
        | GSeqEnsure(q, t) -> shrinkInt t |> Seq.map (fun t' -> GSeqEnsure(q, t'))
        | GSeqSetLen(q, p) -> shrinkInt p |> Seq.map (fun p' -> GSeqSetLen(q, p'))
        | GSeqAdvance(q, k) -> shrinkInt k |> Seq.map (fun k' -> GSeqAdvance(q, k'))
        | GFaulty(inner, k) -> Seq.append (Seq.singleton inner) (shrinkOp inner |> Seq.map (fun i -> GFaulty(i, k)))
        | GBlockHash(p, ts) -> Seq.append (removals ts |> Seq.map (fun ts' -> GBlockHash(p, ts'))) (shrinkInt p |> Seq.map (fun p' -> GBlockHash(p', ts)))
        | GBlockHashChain(ts, bs) -> Seq.append (removals ts |> Seq.map (fun ts' -> GBlockHashChain(ts', bs))) (shrinkInt bs |> Seq.map (fun bs' -> GBlockHashChain(ts, bs')))
        | GPrefixNew(bs, mb, k) ->
            Seq.append (shrinkInt k |> Seq.map (fun k' -> GPrefixNew(bs, mb, k'))) (shrinkInt bs |> Seq.filter ((<) 0) |> Seq.map (fun bs' -> GPrefixNew(bs', mb, k)))
        | GAdmit(q, tenant, system, conv, turn, salted) ->
            seq { for turn' in shrinkInt turn -> GAdmit(q, tenant, system, conv, turn', salted)
                  for tenant' in shrinkInt tenant -> GAdmit(q, tenant', system, conv, turn, salted)
                  for conv' in shrinkInt conv -> GAdmit(q, tenant, system, conv', turn, salted) }
        | GAppend(q, n) -> shrinkInt n |> Seq.filter ((<>) 0) |> Seq.map (fun n' -> GAppend(q, n'))
        | GAllocate | GQuery _ | GSeqSync _ | GSeqRelease _ | GFinish _ | GPreempt _ -> Seq.empty

    /// How many blocks an allocation op takes, if it is one.
    let private allocates op =
        match op with
        | GAllocate -> Some 1
        | GAllocateN n when n >= 0 -> Some n
        | _ -> None

    /// Shorter histories first: from the last `new` on (as a fresh history), halves, quarters,
    /// … single ops removed, pairs removed, adjacent allocations merged into one allocate_n; then a smaller
    /// capacity, then simpler arguments.
    let shrink (h: History) : seq<History> =
        seq {
            let n = h.Ops.Length
            match List.tryFindIndexBack (function GNew c -> c >= 0 && c <= Limits.maxCapacity | _ -> false) h.Ops with
            | Some i ->
                match h.Ops[i] with
                | GNew c -> yield { h with Capacity = c; Ops = List.skip (i + 1) h.Ops }
                | _ -> ()
            | None -> ()
            let mutable chunk = n / 2
            while chunk >= 1 do
                for start in 0..chunk .. n - chunk do
                    yield { h with Ops = List.take start h.Ops @ List.skip (start + chunk) h.Ops }
                chunk <- chunk / 2
            // Pairs (an acquire and its free, say) that only go away together; short histories only.
            if n <= 30 then
                for i in 0 .. n - 2 do
                    for j in i + 1 .. n - 1 do
                        yield { h with Ops = h.Ops |> List.removeAt j |> List.removeAt i }
            for i in 0 .. n - 2 do
                match allocates h.Ops[i], allocates h.Ops[i + 1] with
                | Some a, Some b -> yield { h with Ops = List.take i h.Ops @ [ GAllocateN(a + b) ] @ List.skip (i + 2) h.Ops }
                | _ -> ()
            if h.Capacity > 0 then
                yield { h with Capacity = h.Capacity / 2 }
                yield { h with Capacity = h.Capacity - 1 }
            for i in 0 .. n - 1 do
                for op' in shrinkOp h.Ops[i] do
                    yield { h with Ops = List.updateAt i op' h.Ops }
        }

    let arb: Arbitrary<History> = Arb.fromGenShrink (gen, shrink)

    let arbFor (policy: Allocator.Policy) : Arbitrary<History> = Arb.fromGenShrink (genFor policy, shrink)

    let arbWithSequences: Arbitrary<History> = Arb.fromGenShrink (genWithSequences, shrink)

    let arbWithRequests: Arbitrary<History> = Arb.fromGenShrink (genWithRequests, shrink)

type HistoryArb =
    static member History() = History.arb
