/// The system under test, behind one small interface so that the same differential runner
/// checks the C# reference implementation and planted-bug variants.
namespace PagedKv.Verification

open System
open System.Collections.Generic
open ILGPU
open ILGPU.Runtime
open PagedKv
open PagedKv.Allocation
open PagedKv.Sequences
open PagedKv.Protocol
open PagedKv.Spec

type ISut =
    /// Runs op. A device fault surfaces as DeviceFaultException.
    abstract Step: Op -> Outcome<Reply>
    /// Full observable state; sequences' device buffers are read back from the accelerator.
    abstract Snapshot: unit -> Model.Snapshot
    abstract Validate: unit -> unit
    /// Make the k-th device copy (0 = first) of the next op fail; Disarm cancels.
    abstract ArmFault: int -> unit
    abstract Disarm: unit -> unit

/// A fresh system under test for a history's policy and capacity.
type MakeSut = Allocator.Policy -> int -> ISut

module Convert =
    type private ImplFault = PagedKv.Fault

    /// The spec's Fault for an exception of the implementation.
    let fault (e: PagedKvException) : Spec.Fault =
        let v = int e.Value
        match e.Fault with
        | ImplFault.CapacityOutOfRange -> CapacityOutOfRange v
        | ImplFault.CountOutOfRange -> CountOutOfRange v
        | ImplFault.BlockOutOfRange -> BlockOutOfRange v
        | ImplFault.BlockSizeOutOfRange -> BlockSizeOutOfRange v
        | ImplFault.FreeOfFreeBlock -> FreeOfFreeBlock v
        | ImplFault.AcquireOfFreeBlock -> AcquireOfFreeBlock v
        | ImplFault.RegisterOnFreeBlock -> RegisterOnFreeBlock v
        | ImplFault.RefCountOverflow -> RefCountOverflow v
        | ImplFault.MaxBlocksOutOfRange -> MaxBlocksOutOfRange v
        | ImplFault.LengthOutOfRange -> LengthOutOfRange v
        | ImplFault.UnknownSequence -> UnknownSequence v
        | ImplFault.SequenceExists -> SequenceExists v
        | ImplFault.RequestBlockLost -> RequestBlockLost v
        | other -> failwithf "unmapped fault %A" other

    /// The implementation's policy of the spec's name.
    let policy (p: Allocator.Policy) : IFreeBlockPolicy =
        match p with
        | Allocator.LifoPreferUnhashed -> Policies.Create Policy.LifoPreferUnhashed
        | Allocator.Lru -> Policies.Create Policy.Lru

    let allocator (s: AllocatorSnapshot) : Allocator.Snapshot =
        { Capacity = s.Capacity
          FreeList = s.FreeList
          RefCounts = s.RefCounts
          HashTable = s.HashTable |> Seq.map (fun struct (h, b) -> h, b) |> List.ofSeq
          PeakInUse = s.PeakInUse
          Generations = s.Generations }

    /// The prefix cache's counts, as the spec's record.
    let stats (s: PagedKv.Prefix.PrefixCacheStats) : PrefixCache.Stats =
        { Admitted = s.Admitted; Refused = s.Refused; AppendsRefused = s.AppendsRefused; Finished = s.Finished; Preempted = s.Preempted
          PromptTokens = s.PromptTokens; ReusedTokens = s.ReusedTokens; Lookups = s.Lookups; Hits = s.Hits; Collisions = s.Collisions
          CrossSaltCollisions = s.CrossSaltCollisions; Registered = s.Registered; RegistrationsSkipped = s.RegistrationsSkipped }

    /// A sequence's state: device buffers read back, bytes counted at its copy seam.
    let sequence (s: PagedSeqState, seam: SeamCopies) : Model.SeqSnapshot =
        let struct (table, len) = s.ReadDevice()
        { Blocks = List.ofSeq s.Blocks
          Len = s.Len
          DeviceTable = table |> Seq.map int |> List.ofSeq
          DeviceLen = int len
          BytesWritten = seam.Bytes }

/// The C# reference implementation: a BlockAllocator (its policy made by `policyFor` from the
/// spec's policy: by default the implementation's policy of that name) and, when an accelerator
/// is given, PagedSeqStates on it by id.
type ReferenceSut(policy: Allocator.Policy, capacity: int, policyFor: Allocator.Policy -> IFreeBlockPolicy, accelerator: Accelerator option) =
    do Assertions.install ()
    let mutable a = BlockAllocator(capacity, policyFor policy)
    let seqs = SortedDictionary<int, PagedSeqState * SeamCopies>()
    let faults = FaultArm()
    let mutable prefix: PagedKv.Prefix.PrefixCache option = None
    let dropSeqs () =
        for s, _ in seqs.Values do
            s.Dispose()
        seqs.Clear()
        prefix |> Option.iter (fun p -> p.Dispose())
        prefix <- None
    let cache () =
        match prefix with
        | Some p -> p
        | None -> failwith "a prefix-cache op without a prefix cache (histories never do this)"
    let seqAndSeam q =
        match seqs.TryGetValue q with
        | true, s -> s
        | _ -> raise (PagedKvException(PagedKv.Fault.UnknownSequence, q, sprintf "no sequence %d" q))
    let seq q = fst (seqAndSeam q)
    /// Runs a sequence op; a device fault undoes its bytes (a failed op counts nothing).
    let onSeam q (f: PagedSeqState -> 'a) = let s, seam = seqAndSeam q in seam.Attribute(fun () -> f s)
    let expectNoBlock name (b: int) =
        if b <> -1 then failwithf "%s failed but gave block %d (must be -1)" name b
    /// The reply for a typed error (returned, not rethrown: a throw costs microseconds).
    let refusal (e: PagedKvException) =
        // A clear error names the offending value.
        if not (e.Message.Contains(string e.Value)) then
            failwithf "%A error message does not name the value %d: %s" e.Fault e.Value e.Message
        Error(Fault(Convert.fault e))
    let device () =
        match accelerator with
        | Some acc -> acc
        | None -> failwith "sequence op on a system under test without an accelerator"

    new(policy, capacity) = new ReferenceSut(policy, capacity, Convert.policy, None)
    new(policy, capacity, accelerator) = new ReferenceSut(policy, capacity, Convert.policy, Some accelerator)

    member _.Allocator = a
    member _.FaultsInjected = faults.Injected

    interface IDisposable with
        member _.Dispose() = dropSeqs ()

    interface ISut with
        member _.ArmFault k = faults.Arm k
        member _.Disarm() = faults.Disarm()

        member _.Step op =
            try
                match op with
                | New(c, p) ->
                    a <- BlockAllocator(c, policyFor p)
                    dropSeqs ()
                    Ok Done
                | Allocate ->
                    match a.TryAllocate() with
                    | true, b -> Ok(Block b)
                    | false, b -> expectNoBlock "TryAllocate" b; Error Exhausted
                | AllocateN n ->
                    // The plan must predict the allocation exactly (or fail the same way).
                    let planned = try Choice1Of2(a.TryPlanAllocation n) with :? PagedKvException as e -> Choice2Of2 e
                    match a.TryAllocateN n, planned with
                    | (true, bs), Choice1Of2(true, plan) when plan = bs -> Ok(Blocks(List.ofArray bs))
                    | (false, null), Choice1Of2(false, null) -> Error Exhausted
                    | result, plan -> failwithf "TryPlanAllocation(%d) = %A but TryAllocateN gave %A" n plan result
                | Free bs ->
                    let blocks = Array.ofList bs
                    let fault (f: unit -> unit) = try f (); None with :? PagedKvException as e -> Some e
                    // EnsureCanFree throws exactly what Free throws, and changes nothing.
                    let refs () = blocks |> Array.map (fun b -> if b >= 0 && b < a.Capacity then a.RefCount b else -1)
                    let refsBefore = refs ()
                    let probe = fault (fun () -> a.EnsureCanFree(ReadOnlySpan blocks))
                    if refs () <> refsBefore then failwith "EnsureCanFree changed a ref count"
                    match probe, fault (fun () -> a.Free(ReadOnlySpan blocks)) with
                    | None, None -> Ok Done
                    | Some p, Some e when p.Fault = e.Fault && p.Value = e.Value && p.Message = e.Message -> refusal e
                    | p, e -> failwithf "EnsureCanFree threw %A but Free %A" (p |> Option.map (fun x -> x.Message)) (e |> Option.map (fun x -> x.Message))
                | Acquire b ->
                    a.Acquire b
                    Ok Done
                | AcquireMany bs ->
                    a.AcquireMany(ReadOnlySpan(Array.ofList bs))
                    Ok Done
                | RegisterBlockHash(b, h) ->
                    a.RegisterBlockHash(b, h)
                    Ok Done
                | TryAcquireByHash h ->
                    match a.TryAcquireByHash h with
                    | true, b -> Ok(Hit(Some b))
                    | false, b -> expectNoBlock "TryAcquireByHash" b; Ok(Hit None)
                | RefCount b -> Ok(Count(a.RefCount b))
                | FreeCount -> Ok(Count a.FreeCount)
                | Capacity -> Ok(Count a.Capacity)
                | PeakInUse -> Ok(Count a.PeakInUse)
                | HashTableSize -> Ok(Count a.HashTableSize)
                | BlockHash(parent, tokens) -> Ok(Hash(PagedKv.Hashing.BlockHasher.BlockHash(parent, ReadOnlySpan(Array.ofList tokens))))
                | BlockHashChain(tokens, blockSize) ->
                    Ok(Hashes(List.ofArray (PagedKv.Hashing.BlockHasher.BlockHashChain(ReadOnlySpan(Array.ofList tokens), blockSize))))
                | SeqNew(q, bs, mb) ->
                    if q < 0 || q > Limits.MaxSequenceId then
                        raise (PagedKvException(PagedKv.Fault.UnknownSequence, q, sprintf "sequence id %d out of range" q))
                    let seam = SeamCopies(faults)
                    let s = new PagedSeqState(device (), bs, mb, seam)
                    if seqs.ContainsKey q then
                        s.Dispose()
                        raise (PagedKvException(PagedKv.Fault.SequenceExists, q, sprintf "sequence %d exists" q))
                    seqs[q] <- (s, seam)
                    Ok Done
                | SeqEnsureCapacity(q, t) ->
                    let s = seq q
                    match onSeam q (fun s -> s.EnsureCapacity(a, t)) with
                    | EnsureCapacityResult.Done -> Ok Done
                    | EnsureCapacityResult.PoolExhausted -> Error Exhausted
                    | _ -> Error(ExceedsMaxBlocks(s.BlocksFor t))
                | SeqSetLen(q, l) ->
                    (seq q).SetLen l
                    Ok Done
                | SeqAdvanceLen(q, k) ->
                    (seq q).AdvanceLen k
                    Ok Done
                | SeqSync q ->
                    onSeam q (fun s -> s.SyncContextLen())
                    Ok Done
                | SeqRelease q ->
                    onSeam q (fun s -> s.Release a)
                    Ok Done
                | PrefixNew(bs, mb, k) ->
                    let hasher = if k > 0 then PagedKv.Prefix.CollidingHasher(k) :> PagedKv.Prefix.IBlockHasher else PagedKv.Prefix.SipBlockHasher.Instance
                    let fresh = new PagedKv.Prefix.PrefixCache(a, device (), bs, mb, hasher, fun () -> SeamCopies(faults) :> IDeviceCopies)
                    let refuse (e: PagedKvException) = fresh.Dispose(); raise e
                    if k < 0 then refuse (PagedKvException(PagedKv.Fault.CountOutOfRange, k, sprintf "collide=%d is less than 1" k))
                    match prefix |> Option.bind (fun p -> Seq.tryHead p.Requests) with
                    | Some q -> refuse (PagedKvException(PagedKv.Fault.SequenceExists, q, sprintf "request %d is still admitted" q))
                    | None ->
                        prefix |> Option.iter (fun p -> p.Dispose())
                        prefix <- Some fresh
                        Ok Done
                | ReqAdmit(q, tokens, salt) ->
                    let p = cache ()
                    let r = p.Admit(q, ReadOnlySpan(Array.ofList tokens), salt)
                    if r.Admitted then Ok(Admission(true, r.ComputedTokens, 0, List.ofSeq (p.Sequence(q).Blocks)))
                    else Ok(Admission(false, 0, r.MissingBlocks, []))
                | ReqAppend(q, tokens) ->
                    let r = (cache ()).Append(q, ReadOnlySpan(Array.ofList tokens))
                    Ok(Appending(r.Appended, r.MissingBlocks))
                | ReqFinish q ->
                    (cache ()).Finish q
                    Ok Done
                | ReqPreempt q ->
                    (cache ()).Preempt q
                    Ok Done
            with :? PagedKvException as e ->
                refusal e

        member _.Snapshot() =
            { Alloc = Convert.allocator (a.Snapshot())
              Seqs = [ for KeyValue(q, s) in seqs -> q, Convert.sequence s ]
              Requests =
                match prefix with
                | None -> []
                | Some p ->
                    [ for q in p.Requests ->
                          let s = p.Sequence q
                          let struct (table, _) = s.ReadDevice()
                          q, { Blocks = List.ofSeq s.Blocks; Len = s.Len; Salt = p.Salt q; DeviceTable = table |> Seq.map int |> List.ofSeq } ]
              PrefixStats = prefix |> Option.map (fun p -> Convert.stats p.Stats) }

        member _.Validate() =
            a.Validate()
            // TryGetBlockHash is the inverse of the hash table (TryPeekHash), block by block, and
            // as many blocks have a hash as the table holds (no copy of the state: O(capacity)).
            let mutable hashed = 0
            for b in 0 .. a.Capacity - 1 do
                match a.TryGetBlockHash b with
                | true, h ->
                    match a.TryPeekHash h with
                    | true, b' when b' = b -> hashed <- hashed + 1
                    | got -> failwithf "TryGetBlockHash(%d) = %d, but the hash table maps it to %A" b h got
                | false, 0UL -> ()
                | got -> failwithf "TryGetBlockHash(%d) = %A for a block without a hash (must be false, 0)" b got
            if hashed <> a.HashTableSize then
                failwithf "%d blocks say they have a hash; the hash table holds %d" hashed a.HashTableSize
            for s, _ in seqs.Values do
                s.Validate()
            prefix |> Option.iter (fun p -> p.Validate())
