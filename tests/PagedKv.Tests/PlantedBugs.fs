/// The suite proves its power: each planted bug below must be caught by the same differential
/// property and shrunk to a short history.
module PagedKv.Tests.PlantedBugs

open System
open System.Collections.Generic
open Xunit
open Xunit.Abstractions
open FsCheck
open PagedKv.Allocation
open PagedKv.Spec
open PagedKv.Verification

/// A free-order policy run on the spec's own FreeOrder functions over a mutable list (top
/// first, as the spec holds it), with one of them swapped for a planted bug.
type OrderPlant =
    { Choose: Allocator.Policy -> (int -> bool) -> int list -> int
      Remove: Allocator.Policy -> int -> int list -> int list
      Release: Allocator.Policy -> bool -> int -> int list -> int list
      HashDropped: Allocator.Policy -> int -> int list -> int list }

let faithful =
    { Choose = Allocator.FreeOrder.choose
      Remove = Allocator.FreeOrder.remove
      Release = Allocator.FreeOrder.release
      HashDropped = Allocator.FreeOrder.hashDropped }

type PlantedOrder(policy: Allocator.Policy, plant: OrderPlant) =
    let mutable order: int list = []
    let hashed = HashSet<int>()
    let take (order: int list) =
        let i = plant.Choose policy hashed.Contains order
        order[i], plant.Remove policy i order
    interface IFreeBlockPolicy with
        member _.Count = order.Length
        member _.Order = List.rev order
        member _.Reset c = order <- [ 0 .. c - 1 ]; hashed.Clear()
        member _.Release(b, h) =
            if h then hashed.Add b |> ignore
            order <- plant.Release policy h b order
        member _.TakeForAllocation() =
            let b, rest = take order
            order <- rest
            hashed.Remove b |> ignore
            b
        member _.Take b =
            order <- plant.Remove policy (List.findIndex ((=) b) order) order
            hashed.Remove b |> ignore
        member _.HashDropped b =
            hashed.Remove b |> ignore
            order <- plant.HashDropped policy b order
        member _.Plan(taken: ReadOnlySpan<int>, blocks: Span<int>) =
            let mutable rest = order
            for b in taken.ToArray() do
                rest <- plant.Remove policy (List.findIndex ((=) b) rest) rest
            for i in 0 .. blocks.Length - 1 do
                let b, rest' = take rest
                blocks[i] <- b
                rest <- rest'
        member _.Inconsistency _ = null

/// Plant: a wrapper that lets `rewrite` replace the reference implementation's behaviour.
type Rewrite(policy: Allocator.Policy, capacity: int, rewrite: ISut -> Op -> Outcome<Reply> option, ?snapshot: Allocator.Snapshot -> Allocator.Snapshot) =
    let inner = new ReferenceSut(policy, capacity) :> ISut
    interface ISut with
        member _.Step op = rewrite inner op |> Option.defaultWith (fun () -> inner.Step op)
        member _.Snapshot() = let s = inner.Snapshot() in { s with Alloc = s.Alloc |> defaultArg snapshot id }
        member _.Validate() = inner.Validate()
        member _.ArmFault k = inner.ArmFault k
        member _.Disarm() = inner.Disarm()

let private hashHolder (sut: ISut) h = sut.Snapshot().Alloc.HashTable |> List.tryFind (fst >> (=) h) |> Option.map snd

let private ordered plant : MakeSut = fun p c -> new ReferenceSut(p, c, (fun p -> PlantedOrder(p, plant)), None) :> ISut

/// Each plant: its name, the policy its histories use, and the system under test.
let plants: (string * Allocator.Policy * MakeSut) list =
    [ "allocate ignores the unhashed preference", Allocator.LifoPreferUnhashed,
      ordered { faithful with Choose = fun _ _ _ -> 0 }
      "free list removes by shifting, not swap-remove", Allocator.LifoPreferUnhashed,
      ordered { faithful with Remove = fun _ i order -> List.removeAt i order }
      "lru: a hashed block released to the head, not the tail", Allocator.Lru,
      ordered { faithful with Release = fun _ _ b order -> b :: order }
      "lru: a free block that loses its hash stays where it is", Allocator.Lru,
      ordered { faithful with HashDropped = fun _ _ order -> order }
      "double free is accepted", Allocator.LifoPreferUnhashed,
      fun p c ->
          Rewrite(p, c, fun inner op ->
              match op, inner.Step op with
              | Free _, Error(Fault(FreeOfFreeBlock _)) -> Some(Ok Done)
              | _, r -> Some r) :> ISut
      "a hash hit on a soft-free block is a miss", Allocator.LifoPreferUnhashed,
      fun p c ->
          Rewrite(p, c, fun inner op ->
              match op with
              | TryAcquireByHash h ->
                  match hashHolder inner h with
                  | Some b when inner.Snapshot().Alloc.RefCounts[b] = 0 -> Some(Ok(Hit None))
                  | _ -> None
              | _ -> None) :> ISut
      "peak reports the current use", Allocator.LifoPreferUnhashed,
      fun p c ->
          let current (s: Allocator.Snapshot) = s.Capacity - s.FreeList.Length
          Rewrite(p, c, (fun inner op ->
                        match op with
                        | PeakInUse -> Some(Ok(Count(current (inner.Snapshot().Alloc))))
                        | _ -> None),
                  fun s -> { s with PeakInUse = current s }) :> ISut ]

/// A shrunk history must be at most this many ops (after `new`).
let shortHistory = 12

type Planted(output: ITestOutputHelper) =
    static member Plants = plants |> List.map (fun (name, _, _) -> [| box name |])

    [<Theory; MemberData(nameof Planted.Plants)>]
    member _.``the differential property catches and shrinks the plant``(name: string) =
        let _, policy, makeSut = plants |> List.find (fun (n, _, _) -> n = name)
        let found = Campaign.check makeSut (History.arbFor policy) (Differential.Totals()) (Rnd(Settings.seed)) 500
        match found with
        | None -> failwithf "plant '%s' was not caught in 500 histories (seed %d)" name Settings.seed
        | Some f ->
            output.WriteLine(f.Failure.Report)
            let ops = f.Failure.Protocol.Length - 1
            Assert.True(ops <= shortHistory, sprintf "shrunk to %d ops, more than %d:\n%s" ops shortHistory f.Failure.Report)

/// A free-order policy that hands out block 0 on every allocation, free or not: the allocator's
/// Debug.Assert after taking it ("the policy yielded a block with references") fails inside the
/// reference, on the test thread.
type YieldsBlockZero(policy: Allocator.Policy) =
    let inner = PlantedOrder(policy, faithful) :> IFreeBlockPolicy
    interface IFreeBlockPolicy with
        member _.Count = inner.Count
        member _.Order = inner.Order
        member _.Reset c = inner.Reset c
        member _.Release(b, h) = inner.Release(b, h)
        member _.TakeForAllocation() =
            (if inner.Order |> Seq.contains 0 then inner.Take 0)
            0
        member _.Take b = inner.Take b
        member _.HashDropped b = inner.HashDropped b
        member _.Plan(taken, blocks) = inner.Plan(taken, blocks)
        member _.Inconsistency b = inner.Inconsistency b

type Invariant(output: ITestOutputHelper) =
    [<Fact>]
    member _.``a failed Debug.Assert in the reference is a test failure with its shrunk history, not an ended test host``() =
#if DEBUG
        let makeSut: MakeSut = fun p c -> new ReferenceSut(p, c, (fun p -> YieldsBlockZero p :> IFreeBlockPolicy), None) :> ISut
        match Campaign.check makeSut (History.arbFor Allocator.LifoPreferUnhashed) (Differential.Totals()) (Rnd(Settings.seed)) 500 with
        | None -> failwithf "the planted invariant violation was not caught (seed %d)" Settings.seed
        | Some f ->
            output.WriteLine(f.Failure.Report)
            Assert.Contains("Debug.Assert failed: the policy yielded a block with references", f.Failure.Reason)
            Assert.True(f.Failure.Protocol.Length - 1 <= 4, f.Failure.Report)
#else
        output.WriteLine "Release build: Debug.Assert is compiled out; the Debug test run checks this"
#endif
