/// The system under test, behind one small interface so that the same differential runner
/// checks the C# reference implementation, planted-bug variants, and (through the replay
/// protocol) other processes.
namespace PagedKv.Harness

open System
open PagedKv
open PagedKv.Allocation
open PagedKv.Spec

type ISut =
    abstract Step: Op -> Outcome<Reply>
    abstract Snapshot: unit -> Allocator.Snapshot
    abstract Validate: unit -> unit

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
        | other -> failwithf "unmapped fault %A" other

    let snapshot (s: AllocatorSnapshot) : Allocator.Snapshot =
        { Capacity = s.Capacity
          FreeList = List.ofArray s.FreeList
          RefCounts = List.ofArray s.RefCounts
          HashTable = s.HashTable |> Seq.map (fun struct (h, b) -> h, b) |> List.ofSeq
          PeakInUse = s.PeakInUse }

/// The C# BlockAllocator, created with a policy from `policy` (the original's by default).
type AllocatorSut(capacity: int, policy: unit -> IFreeBlockPolicy) =
    let mutable a = BlockAllocator(capacity, policy ())

    new(capacity) = AllocatorSut(capacity, fun () -> LifoPreferUnhashed())

    member _.Allocator = a

    interface ISut with
        member _.Step op =
            try
                match op with
                | New c ->
                    a <- BlockAllocator(c, policy ())
                    Ok Done
                | Allocate ->
                    match a.TryAllocate() with
                    | true, b -> Ok(Block b)
                    | _ -> Error Exhausted
                | AllocateN n ->
                    match a.TryAllocateN n with
                    | true, bs -> Ok(Blocks(List.ofArray bs))
                    | _ -> Error Exhausted
                | Free bs ->
                    a.Free(ReadOnlySpan(Array.ofList bs))
                    Ok Done
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
                    | _ -> Ok(Hit None)
                | RefCount b -> Ok(Count(a.RefCount b))
                | FreeCount -> Ok(Count a.FreeCount)
                | Capacity -> Ok(Count a.Capacity)
                | PeakInUse -> Ok(Count a.PeakInUse)
                | HashTableSize -> Ok(Count a.HashTableSize)
            with :? PagedKvException as e ->
                Error(Fault(Convert.fault e))

        member _.Snapshot() = Convert.snapshot (a.Snapshot())
        member _.Validate() = a.Validate()
