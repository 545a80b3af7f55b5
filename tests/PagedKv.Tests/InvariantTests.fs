/// Validate() is the always-on invariant check: each invariant, corrupted on purpose (by
/// reflection: no public operation can do it), must be reported under its own name.
module PagedKv.Tests.InvariantTests

open System
open System.Collections.Generic
open System.Reflection
open Xunit
open PagedKv
open PagedKv.Allocation

let private field name (o: obj) =
    o.GetType().GetField(name, BindingFlags.NonPublic ||| BindingFlags.Instance).GetValue o

/// Capacity 4: blocks 0 and 1 live, 0 registered under hash 9; 2 and 3 free.
let private fresh () =
    let a = BlockAllocator(4)
    a.TryAllocateN 2 |> ignore
    a.RegisterBlockHash(0, 9UL)
    a.Validate()
    a

let private violated (name: string) (a: BlockAllocator) =
    let e = Assert.Throws<InvariantViolationException>(fun () -> a.Validate())
    Assert.Equal(name, e.Invariant)
    // The report names the invariant and gives the numbers that broke it.
    Assert.Matches(sprintf @"^invariant %s violated: .*\d" name, e.Message)

[<Fact>]
let ``ids-in-range: a hash pointing past capacity`` () =
    let a = fresh ()
    (field "hashToBlock" a :?> Dictionary<uint64, int>)[5UL] <- 4
    violated AllocatorInvariants.IdsInRange a

[<Fact>]
let ``ids-in-range: a free-list entry past capacity`` () =
    let a = fresh ()
    (field "stack" (field "free" a) :?> List<int>).Add 7
    violated AllocatorInvariants.IdsInRange a

[<Fact>]
let ``free-list-is-ref-zero: a free-list entry twice`` () =
    let a = fresh ()
    (field "stack" (field "free" a) :?> List<int>).Add 2
    violated AllocatorInvariants.FreeListIsRefZero a

[<Fact>]
let ``free-list-is-ref-zero: a free-list entry with a reference`` () =
    let a = fresh ()
    (field "refCounts" a :?> uint16[])[2] <- 1us
    violated AllocatorInvariants.FreeListIsRefZero a

[<Fact>]
let ``free-plus-live: a live block that lost its references without being freed`` () =
    let a = fresh ()
    (field "refCounts" a :?> uint16[])[1] <- 0us
    violated AllocatorInvariants.FreePlusLive a

[<Fact>]
let ``hash-bijection: block → hash disagrees with hash → block`` () =
    let a = fresh ()
    (field "blockToHash" a :?> Nullable<uint64>[])[0] <- Nullable 8UL
    violated AllocatorInvariants.HashBijection a

[<Fact>]
let ``hash-bijection: a block with a hash the table does not have`` () =
    let a = fresh ()
    (field "blockToHash" a :?> Nullable<uint64>[])[1] <- Nullable 8UL
    violated AllocatorInvariants.HashBijection a

[<Fact>]
let ``peak-bounds: peak below use, and peak above capacity`` () =
    let peak = typeof<BlockAllocator>.GetField("<PeakInUse>k__BackingField", BindingFlags.NonPublic ||| BindingFlags.Instance)
    let a = fresh ()
    peak.SetValue(a, 1)
    violated AllocatorInvariants.PeakBounds a
    peak.SetValue(a, 5)
    violated AllocatorInvariants.PeakBounds a

/// A policy whose Count disagrees with its Order (a broken policy implementation).
type MiscountingPolicy() =
    let inner = LifoPreferUnhashed()
    interface IFreeBlockPolicy with
        member _.Count = inner.Count + 1
        member _.Order = inner.Order
        member _.Clone() = inner.Clone()
        member _.Reset c = inner.Reset c
        member _.Release(b, h) = inner.Release(b, h)
        member _.HashDropped b = inner.HashDropped b
        member _.Take b = inner.Take b
        member _.TakeForAllocation h = inner.TakeForAllocation h

[<Fact>]
let ``free-plus-live: a policy whose count disagrees with its order`` () =
    let policy = MiscountingPolicy() :> IFreeBlockPolicy
    policy.Reset 3
    // Swapped in after construction: constructing with it would trip the Debug assertions first.
    let a = BlockAllocator(3)
    typeof<BlockAllocator>.GetField("free", BindingFlags.NonPublic ||| BindingFlags.Instance).SetValue(a, policy)
    violated AllocatorInvariants.FreePlusLive a

[<Fact>]
let ``a valid allocator passes at every capacity edge`` () =
    for c in [ 0; 1; 2; 4096 ] do
        BlockAllocator(c).Validate()

[<Fact>]
let ``invalid capacities are rejected with their value`` () =
    for c in [ -1; Limits.MaxCapacity + 1; Int32.MinValue ] do
        let e = Assert.Throws<PagedKvException>(fun () -> BlockAllocator(c) |> ignore)
        Assert.Equal(Fault.CapacityOutOfRange, e.Fault)
        Assert.Equal(int64 c, e.Value)
    Assert.Equal(Limits.MaxCapacity, BlockAllocator(Limits.MaxCapacity).Capacity)
