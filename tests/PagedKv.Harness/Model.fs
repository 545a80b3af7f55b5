/// Runs a concrete Op on the spec.
module PagedKv.Harness.Model

open PagedKv.Spec

let private map f (outcome, state) = Result.map f outcome, state

let step (op: Op) (s: Allocator.State) : Outcome<Reply> * Allocator.State =
    match op with
    | New c ->
        match Allocator.create c with
        | Ok fresh -> Ok Done, fresh
        | Error f -> Error(Fault f), s
    | Allocate -> Allocator.allocate s |> map Block
    | AllocateN n -> Allocator.allocateN n s |> map Blocks
    | Free bs -> Allocator.free bs s |> map (fun () -> Done)
    | Acquire b -> Allocator.acquire b s |> map (fun () -> Done)
    | AcquireMany bs -> Allocator.acquireMany bs s |> map (fun () -> Done)
    | RegisterBlockHash(b, h) -> Allocator.registerBlockHash b h s |> map (fun () -> Done)
    | TryAcquireByHash h -> Allocator.tryAcquireByHash h s |> map Hit
    | RefCount b -> Allocator.refCountOf b s |> Result.map Count, s
    | FreeCount -> Ok(Count(Allocator.freeCount s)), s
    | Capacity -> Ok(Count s.Capacity), s
    | PeakInUse -> Ok(Count s.Peak), s
    | HashTableSize -> Ok(Count s.Hashes.Count), s
