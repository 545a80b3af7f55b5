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
let private freshWith (policy: Policy) =
    let a = BlockAllocator(4, policy)
    a.TryAllocateN 2 |> ignore
    a.RegisterBlockHash(0, 9UL)
    a.Validate()
    a

let private fresh () = freshWith Policy.LifoPreferUnhashed

let private violated (name: string) (a: BlockAllocator) =
    let e = Assert.Throws<InvariantViolationException>(fun () -> a.Validate())
    Assert.Equal(name, e.Invariant)
    // The report names the invariant and gives the numbers that broke it.
    Assert.Matches(sprintf @"^invariant %s violated: .*\d" name, e.Message)

/// A policy whose order or count lies (a broken policy implementation).
type Tampered(inner: IFreeBlockPolicy, extra: int list, countOffset: int) =
    interface IFreeBlockPolicy with
        member _.Count = inner.Count + countOffset
        member _.Order = Seq.append inner.Order extra
        member _.Plan(taken, blocks) = inner.Plan(taken, blocks)
        member _.Reset c = inner.Reset c
        member _.Release(b, h) = inner.Release(b, h)
        member _.HashDropped b = inner.HashDropped b
        member _.Take b = inner.Take b
        member _.TakeForAllocation() = inner.TakeForAllocation()
        member _.Inconsistency h = inner.Inconsistency h

/// Swaps a tampered policy in after construction (constructing with it would trip the Debug
/// assertions first).
let private tamper (extra: int list) (countOffset: int) (a: BlockAllocator) =
    let slot = typeof<BlockAllocator>.GetField("free", BindingFlags.NonPublic ||| BindingFlags.Instance)
    slot.SetValue(a, Tampered(slot.GetValue a :?> IFreeBlockPolicy, extra, countOffset))
    a

[<Fact>]
let ``ids-in-range: a hash pointing past capacity`` () =
    let a = fresh ()
    (field "hashToBlock" a :?> HashIndex).Add(5UL, 4)
    violated AllocatorInvariants.IdsInRange a

[<Fact>]
let ``ids-in-range: a free-list entry past capacity`` () =
    violated AllocatorInvariants.IdsInRange (fresh () |> tamper [ 4 ] 1) // capacity 4: the first id past it

[<Fact>]
let ``free-list-is-ref-zero: a free-list entry twice`` () =
    violated AllocatorInvariants.FreeListIsRefZero (fresh () |> tamper [ 2 ] 1)

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
let ``free-plus-live: a policy whose count disagrees with its order`` () =
    violated AllocatorInvariants.FreePlusLive (fresh () |> tamper [] 1)

[<Fact>]
let ``hash-bijection: block → hash disagrees with hash → block`` () =
    let a = fresh ()
    (field "blockHash" a :?> uint64[])[0] <- 8UL
    violated AllocatorInvariants.HashBijection a
    Assert.Contains("hash 9 → block 0 but block → 8", Assert.Throws<InvariantViolationException>(fun () -> a.Validate()).Message)

[<Fact>]
let ``hash-bijection: a table entry whose block has no hash`` () =
    let a = fresh ()
    (field "hasHash" a :?> bool[])[0] <- false
    violated AllocatorInvariants.HashBijection a
    let e = Assert.Throws<InvariantViolationException>(fun () -> a.Validate())
    Assert.Contains("hash 9 → block 0 but block → none", e.Message)

[<Fact>]
let ``hash-bijection: a block with a hash the table does not have`` () =
    let a = fresh ()
    (field "hasHash" a :?> bool[])[1] <- true
    (field "blockHash" a :?> uint64[])[1] <- 8UL
    violated AllocatorInvariants.HashBijection a

[<Fact>]
let ``hash-bijection: a table whose count is off, or whose entry is cut off from its home slot`` () =
    let a = fresh ()
    let index = field "hashToBlock" a :?> HashIndex
    let count = typeof<HashIndex>.GetField("<Count>k__BackingField", BindingFlags.NonPublic ||| BindingFlags.Instance)
    count.SetValue(index, 2)
    violated AllocatorInvariants.HashBijection a
    count.SetValue(index, 1)
    a.Validate()
    // Move hash 9's entry one slot on, leaving its home slot empty: lookups can no longer find it.
    let entries = field "entries" index :?> Array
    let at = [ 0 .. entries.Length - 1 ] |> List.find (fun i -> entries.GetValue i <> Activator.CreateInstance(entries.GetType().GetElementType()))
    let entry = entries.GetValue at
    entries.SetValue(Activator.CreateInstance(entries.GetType().GetElementType()), at)
    entries.SetValue(entry, (at + 1) % entries.Length)
    violated AllocatorInvariants.HashBijection a

[<Fact>]
let ``peak-bounds: peak below use, and peak above capacity`` () =
    let peak = typeof<BlockAllocator>.GetField("<PeakInUse>k__BackingField", BindingFlags.NonPublic ||| BindingFlags.Instance)
    let a = fresh ()
    peak.SetValue(a, 1)
    violated AllocatorInvariants.PeakBounds a
    peak.SetValue(a, 5)
    violated AllocatorInvariants.PeakBounds a

[<Fact>]
let ``free-order-index: the stack's slot index, its unhashed-slot bitmap, and the bitmap's summary`` () =
    let lifo (a: BlockAllocator) = field "free" a
    let message (a: BlockAllocator) = Assert.Throws<InvariantViolationException>(fun () -> a.Validate()).Message
    // Free blocks 2, 3 sit in slots 1, 0 (block 3 at the bottom); both unhashed.
    let a = fresh ()
    (field "slotOf" (lifo a) :?> int[])[2] <- 0
    violated AllocatorInvariants.FreeOrderIndex a
    Assert.EndsWith("stack slot 1 holds block 2, whose index says slot 0", message a)
    let a = fresh ()
    (field "unhashed" (lifo a) :?> SlotBitmap).Remove 1
    violated AllocatorInvariants.FreeOrderIndex a
    Assert.EndsWith("stack slot 1 is marked hashed or unused but holds block 2, hashed=False", message a)
    let a = fresh ()
    (field "unhashed" (lifo a) :?> SlotBitmap).Add 3
    violated AllocatorInvariants.FreeOrderIndex a
    Assert.EndsWith("stack slot 3 is marked unhashed but holds nothing", message a)

[<Fact>]
let ``free-order-index: the queue's links`` () =
    let a = freshWith Policy.Lru
    let lru = field "free" a
    (field "next" lru :?> int[])[2] <- -1 // the queue head → tail is 2, 3: cut it after 2
    violated AllocatorInvariants.FreeOrderIndex a
    let a = freshWith Policy.Lru
    let count = typeof<Lru>.GetField("<Count>k__BackingField", BindingFlags.NonPublic ||| BindingFlags.Instance)
    count.SetValue(field "free" a, 1)
    violated AllocatorInvariants.FreePlusLive a

[<Fact>]
let ``free-order-index: a bitmap summary bit that disagrees with its word`` () =
    // 100 slots: two words under one summary word.
    let a = BlockAllocator(100)
    let bitmap = field "unhashed" (field "free" a) :?> SlotBitmap
    let levels = field "levels" bitmap :?> uint64[][]
    levels[1][0] <- levels[1][0] &&& ~~~2UL
    violated AllocatorInvariants.FreeOrderIndex a
    Assert.Equal("level 1 says word 1 of level 0 is empty", bitmap.Inconsistency())
    // A summary bit set over an empty word.
    let bitmap = SlotBitmap(200)
    let levels = field "levels" bitmap :?> uint64[][]
    levels[1][0] <- 4UL
    Assert.Equal("level 1 says word 2 of level 0 is non-empty", bitmap.Inconsistency())

[<Fact>]
let ``each index reports its own corruption`` () =
    let bitmap = SlotBitmap(10)
    let words = (field "levels" bitmap :?> uint64[][]).[0]
    words[0] <- 1UL <<< 12
    Assert.Equal("slot 12 is set past the size 10", bitmap.Inconsistency())
    let lru = Lru()
    (lru :> IFreeBlockPolicy).Reset 4
    (field "prev" lru :?> int[])[2] <- 0
    Assert.Equal("block 2 links back to 0, not 1, or the queue holds more than 4 blocks", (lru :> IFreeBlockPolicy).Inconsistency(fun _ -> false))
    let index = HashIndex()
    index.Add(9UL, 0)
    let entries = field "entries" index :?> Array
    let empty = Activator.CreateInstance(entries.GetType().GetElementType())
    let at = [ 0 .. entries.Length - 1 ] |> List.find (fun i -> entries.GetValue i <> empty)
    let entry = entries.GetValue at
    entries.SetValue(empty, at)
    entries.SetValue(entry, (at + 1) % entries.Length)
    Assert.Equal(sprintf "hash 9 in slot %d is cut off from its home slot by the empty slot %d" ((at + 1) % entries.Length) at, index.Inconsistency())
    Assert.Contains("negative size", Assert.Throws<ArgumentOutOfRangeException>(fun () -> SlotBitmap(-1) |> ignore).Message)
    // The queue's tail names another block while the links and the count agree.
    let lru = Lru()
    (lru :> IFreeBlockPolicy).Reset 4
    typeof<Lru>.GetField("tail", BindingFlags.NonPublic ||| BindingFlags.Instance).SetValue(lru, 2)
    Assert.Equal("the queue from the head ends at 3 after 4 blocks; tail 2, count 4", (lru :> IFreeBlockPolicy).Inconsistency(fun _ -> false))
    let count = typeof<Lru>.GetField("<Count>k__BackingField", BindingFlags.NonPublic ||| BindingFlags.Instance)
    let lru = Lru()
    (lru :> IFreeBlockPolicy).Reset 4
    count.SetValue(lru, 5)
    Assert.Equal("the queue from the head ends at 3 after 4 blocks; tail 3, count 5", (lru :> IFreeBlockPolicy).Inconsistency(fun _ -> false))
    let index = HashIndex()
    index.Add(1UL, 0)
    typeof<HashIndex>.GetField("<Count>k__BackingField", BindingFlags.NonPublic ||| BindingFlags.Instance).SetValue(index, 2)
    Assert.Equal("1 entries held but the count says 2", index.Inconsistency())

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
