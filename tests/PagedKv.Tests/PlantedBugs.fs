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

/// Plant: allocate ignores the unhashed preference and always takes the top entry.
type IgnoresUnhashedPreference() =
    let inner = LifoPreferUnhashed()
    interface IFreeBlockPolicy with
        member _.Count = inner.Count
        member _.Reset c = inner.Reset c
        member _.Release(b, h) = inner.Release(b, h)
        member _.TakeForAllocation _ = inner.TakeForAllocation(fun _ -> false)
        member _.Take b = inner.Take b
        member _.HashDropped b = inner.HashDropped b
        member _.Clone() = failwith "not planned"
        member _.Order = inner.Order

/// Plant: entries are removed by shifting the rest down instead of swap-remove.
type ShiftRemove() =
    let stack = List<int>()
    let removeAt (i: int) = let b = stack[i] in stack.RemoveAt i; b
    interface IFreeBlockPolicy with
        member _.Count = stack.Count
        member _.Reset c = stack.Clear(); stack.AddRange [ c - 1 .. -1 .. 0 ]
        member _.Release(b, _) = stack.Add b
        member _.TakeForAllocation hasHash =
            let i = [ stack.Count - 1 .. -1 .. 0 ] |> List.tryFind (fun i -> not (hasHash.Invoke stack[i]))
            removeAt (defaultArg i (stack.Count - 1))
        member _.Take b = removeAt (stack.LastIndexOf b) |> ignore
        member _.HashDropped _ = ()
        member _.Clone() = failwith "not planned"
        member _.Order = stack

/// Plant: a wrapper that lets `rewrite` replace the reference implementation's behaviour.
type Rewrite(capacity: int, rewrite: ISut -> Op -> Outcome<Reply> option, ?snapshot: Allocator.Snapshot -> Allocator.Snapshot) =
    let inner = new ReferenceSut(capacity) :> ISut
    interface ISut with
        member _.Step op = rewrite inner op |> Option.defaultWith (fun () -> inner.Step op)
        member _.Snapshot() = let s = inner.Snapshot() in { s with Alloc = s.Alloc |> defaultArg snapshot id }
        member _.Validate() = inner.Validate()
        member _.ArmFault k = inner.ArmFault k
        member _.Disarm() = inner.Disarm()

let private hashHolder (sut: ISut) h = sut.Snapshot().Alloc.HashTable |> List.tryFind (fst >> (=) h) |> Option.map snd

let plants: (string * (int -> ISut)) list =
    [ "allocate ignores the unhashed preference", fun c -> new ReferenceSut(c, (fun () -> IgnoresUnhashedPreference()), None) :> ISut
      "free list removes by shifting, not swap-remove", fun c -> new ReferenceSut(c, (fun () -> ShiftRemove()), None) :> ISut
      "double free is accepted",
      fun c ->
          Rewrite(c, fun inner op ->
              match op, inner.Step op with
              | Free _, Error(Fault(FreeOfFreeBlock _)) -> Some(Ok Done)
              | _, r -> Some r) :> ISut
      "a hash hit on a soft-free block is a miss",
      fun c ->
          Rewrite(c, fun inner op ->
              match op with
              | TryAcquireByHash h ->
                  match hashHolder inner h with
                  | Some b when inner.Snapshot().Alloc.RefCounts[b] = 0 -> Some(Ok(Hit None))
                  | _ -> None
              | _ -> None) :> ISut
      "peak reports the current use",
      fun c ->
          let current (s: Allocator.Snapshot) = s.Capacity - s.FreeList.Length
          Rewrite(c, (fun inner op ->
                        match op with
                        | PeakInUse -> Some(Ok(Count(current (inner.Snapshot().Alloc))))
                        | _ -> None),
                  fun s -> { s with PeakInUse = current s }) :> ISut ]

/// A shrunk history must be at most this many ops (after `new`).
let shortHistory = 12

type Planted(output: ITestOutputHelper) =
    static member Plants = plants |> List.map (fun (name, _) -> [| box name |])

    [<Theory; MemberData(nameof Planted.Plants)>]
    member _.``the differential property catches and shrinks the plant``(name: string) =
        let makeSut = plants |> List.find (fst >> (=) name) |> snd
        let found = Campaign.check makeSut History.arb (Differential.Totals()) (Rnd(Settings.seed)) 500
        match found with
        | None -> failwithf "plant '%s' was not caught in 500 histories (seed %d)" name Settings.seed
        | Some f ->
            output.WriteLine(f.Failure.Report)
            let ops = f.Failure.Protocol.Length - 1
            Assert.True(ops <= shortHistory, sprintf "shrunk to %d ops, more than %d:\n%s" ops shortHistory f.Failure.Report)
