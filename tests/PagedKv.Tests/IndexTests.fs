/// The O(1)/O(log n) indexes behind the allocator, each against a plain model at sizes the
/// differential campaigns never reach (bitmaps of 3–4 levels, hash tables of thousands of
/// entries with keys built to collide), and both free-order policies against the spec's
/// FreeOrder functions at large capacities.
module PagedKv.Tests.IndexTests

open System
open System.Collections.Generic
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open PagedKv.Allocation
open PagedKv.Spec

/// Sizes at and around the level boundaries (64, 4096, 262144 slots).
let private genSize =
    Gen.frequency
        [ 2, Gen.choose (0, 130)
          2, Gen.elements [ 63; 64; 65; 4095; 4096; 4097; 262143; 262144; 262145 ]
          1, Gen.choose (4097, 300_000) ]

type BitmapOp =
    | Add of int
    | Remove of int
    /// Add a run of slots (so that whole words and summary words fill and empty).
    | AddRun of int * int
    | RemoveRun of int * int

let private genBitmapCase =
    gen {
        let! size = genSize
        let slot = if size = 0 then Gen.constant 0 else Gen.frequency [ 3, Gen.choose (0, size - 1); 1, Gen.choose (max 0 (size - 130), size - 1) ]
        let run = Gen.zip slot (Gen.choose (1, 300))
        let! ops =
            if size = 0 then Gen.constant []
            else Gen.listOf (Gen.frequency [ 4, Gen.map Add slot; 3, Gen.map Remove slot; 1, Gen.map AddRun run; 1, Gen.map RemoveRun run ])
        return size, ops
    }

[<Settings.ScaledProperty(200)>]
let ``SlotBitmap: Highest is the largest member after any adds and removes, at any size`` () =
    Prop.forAll (Arb.fromGen genBitmapCase) (fun (size, ops) ->
        let bitmap = SlotBitmap(size)
        let model = SortedSet<int>()
        let apply (slot: int) add =
            if slot < size then
                bitmap.Set(slot, add)
                if add then model.Add slot |> ignore else model.Remove slot |> ignore
        let agrees () =
            bitmap.Highest() = (if model.Count = 0 then -1 else model.Max)
            && Seq.forall bitmap.Contains model
        let stepsAgree =
            ops |> List.forall (fun op ->
                match op with
                | Add s -> apply s true
                | Remove s -> apply s false
                | AddRun(s, n) -> for i in s .. s + n - 1 do apply i true
                | RemoveRun(s, n) -> for i in s .. s + n - 1 do apply i false
                agrees ())
        stepsAgree && isNull (bitmap.Inconsistency()) && (bitmap.Size = size))

/// The inverse of the Fibonacci multiplier mod 2^64: i × inverse lands every i in home slot 0.
let private inverse =
    let c = 0x9E3779B97F4A7C15UL
    // Newton's iteration for the inverse of an odd number mod 2^64.
    let mutable x = c
    for _ in 1..6 do
        x <- x * (2UL - c * x)
    Assert.Equal(1UL, c * x)
    x

type HashOp =
    | Put of key: int * block: int
    | Drop of key: int
    | Get of key: int

/// Keys: all in one home slot (i × inverse), small integers, high-bit patterns, random.
let private genKeys =
    Gen.frequency
        [ 1, Gen.constant (Array.init 600 (fun i -> uint64 i * inverse))
          1, Gen.constant (Array.init 600 uint64)
          1, Gen.constant (Array.init 600 (fun i -> uint64 i <<< 40))
          1, Gen.arrayOfLength 600 (Gen.choose64 (Int64.MinValue, Int64.MaxValue) |> Gen.map uint64) ]

[<Settings.ScaledProperty(150)>]
let ``HashIndex equals a dictionary under inserts, deletes and lookups, with keys built to collide`` () =
    let genCase =
        gen {
            let! keys = genKeys
            let key = Gen.frequency [ 3, Gen.choose (0, 599); 1, Gen.choose (0, 20) ]
            let! ops = Gen.listOfLength 1500 (Gen.frequency [ 5, Gen.map2 (fun k b -> Put(k, b)) key (Gen.choose (0, 1 <<< 24)); 3, Gen.map Drop key; 3, Gen.map Get key ])
            return keys, ops
        }
    Prop.forAll (Arb.fromGen genCase) (fun (keys, ops) ->
        let index = HashIndex()
        let model = Dictionary<uint64, int>()
        let ok =
            ops |> List.forall (fun op ->
                match op with
                | Put(k, b) when not (model.ContainsKey keys[k]) -> index.Add(keys[k], b); model[keys[k]] <- b; true
                | Put _ -> true
                | Drop k when model.Remove keys[k] -> index.Remove keys[k]; true
                | Drop _ -> true
                | Get k ->
                    let found, block = index.TryGet keys[k]
                    match model.TryGetValue keys[k] with
                    | true, b -> found && block = b
                    | _ -> not found && block = -1)
        let pairs = index.Pairs |> Seq.map (fun struct (h, b) -> h, b) |> Seq.sort |> List.ofSeq
        let expected = model |> Seq.map (fun kv -> kv.Key, kv.Value) |> Seq.sort |> List.ofSeq
        ok && pairs = expected && index.Count = model.Count && isNull (index.Inconsistency()))

type PolicyOp =
    /// Take for allocation.
    | Allocate
    /// Release the i-th held block (modulo), hashed or not.
    | Release of i: int * hashed: bool
    /// Take the i-th free block (a hash hit; modulo), if it is hashed.
    | Hit of i: int
    /// The i-th hashed free block loses its hash.
    | Dropped of i: int
    /// Plan n allocations after taking some free blocks (indexes into the free list, hashed or not).
    | Plan of taken: int list * n: int

[<Settings.ScaledProperty(40)>]
let ``both policies equal the spec's FreeOrder at large capacities`` () =
    let genCase =
        gen {
            let! capacity = Gen.frequency [ 1, Gen.choose (1, 300); 1, Gen.choose (4000, 20_000) ]
            let! ops =
                Gen.listOfLength 300 (Gen.frequency
                    [ 4, Gen.constant Allocate; 4, Gen.map2 (fun i h -> Release(i, h)) (Gen.choose (0, 1000)) (Gen.elements [ true; true; false ])
                      2, Gen.map Hit (Gen.choose (0, 1000)); 1, Gen.map Dropped (Gen.choose (0, 1000)); 1, Gen.map2 (fun t n -> Plan(t, n)) (Gen.listOf (Gen.choose (0, 1000)) |> Gen.map (List.truncate 6)) (Gen.choose (0, 40)) ])
            return capacity, ops
        }
    // Every case runs under both policies: at the mutation gate's scale a property sees only a few cases.
    let run policy (capacity, ops) =
        let impl = Policies.Create(match policy with Allocator.Lru -> Policy.Lru | _ -> Policy.LifoPreferUnhashed)
        impl.Reset capacity
        let mutable order = [ 0 .. capacity - 1 ] // top first, as the spec holds it
        let held = List<int>()
        let hashed = HashSet<int>()
        let nth (xs: 'a seq) i = Seq.item (i % Seq.length xs) xs
        let take i =
            let b = order[i]
            order <- Allocator.FreeOrder.remove policy i order
            hashed.Remove b |> ignore
            held.Add b
            b
        let stepOk op =
            match op with
            | Allocate when not order.IsEmpty -> impl.TakeForAllocation() = take (Allocator.FreeOrder.choose policy hashed.Contains order)
            | Release(i, h) when held.Count > 0 ->
                let b = nth held i
                held.Remove b |> ignore
                if h then hashed.Add b |> ignore
                impl.Release(b, h)
                order <- Allocator.FreeOrder.release policy h b order
                true
            | Hit i when hashed.Count > 0 ->
                let b = nth (Seq.sort hashed) i
                impl.Take b
                take (List.findIndex ((=) b) order) = b
            | Dropped i when hashed.Count > 0 ->
                let b = nth (Seq.sort hashed) i
                hashed.Remove b |> ignore
                impl.HashDropped b
                order <- Allocator.FreeOrder.hashDropped policy b order
                true
            | Plan(takenIndexes, n) ->
                let taken = takenIndexes |> List.choose (fun i -> if order.IsEmpty then None else Some(nth order i)) |> List.distinct
                if taken.Length + n > order.Length then true
                else
                    let planned = Array.zeroCreate n
                    impl.Plan(ReadOnlySpan(Array.ofList taken), Span planned)
                    let afterTakes = taken |> List.fold (fun (o: int list) b -> Allocator.FreeOrder.remove policy (List.findIndex ((=) b) o) o) order
                    // Taken blocks keep whatever hash they had; the plan's choices see the rest.
                    let expected, _ =
                        List.mapFold (fun (o: int list) () ->
                            let i = Allocator.FreeOrder.choose policy hashed.Contains o
                            o[i], Allocator.FreeOrder.remove policy i o) afterTakes (List.replicate n ())
                    List.ofArray planned = expected && List.ofSeq impl.Order = List.rev order && isNull (impl.Inconsistency(fun b -> hashed.Contains b))
            | _ -> true
        ops |> List.forall (fun op -> stepOk op && impl.Count = order.Length)
        && List.ofSeq impl.Order = List.rev order
        && isNull (impl.Inconsistency(fun b -> hashed.Contains b))
    Prop.forAll (Arb.fromGen genCase) (fun case ->
        (run Allocator.LifoPreferUnhashed case |> Prop.label "lifo-prefer-unhashed") .&. (run Allocator.Lru case |> Prop.label "lru"))

[<Fact>]
let ``HashIndex doubles exactly when an insert would pass 3/4 full, and keeps clustered keys apart`` () =
    for keys in [ Array.init 3000 uint64; Array.init 3000 (fun i -> uint64 i <<< 32); Array.init 3000 (fun i -> UInt64.MaxValue - uint64 i) ] do
        let index = HashIndex()
        keys |> Array.iteri (fun i k ->
            index.Add(k, i)
            let n = i + 1
            let expected = Seq.initInfinite (fun p -> 16 <<< p) |> Seq.find (fun slots -> 4 * n <= 3 * slots)
            Assert.Equal(expected, index.Slots))
        // Fibonacci hashing spreads runs of consecutive and of shifted keys: short probes.
        Assert.True(index.LongestProbe() <= 8, sprintf "longest probe %d for %d clustered keys" (index.LongestProbe()) keys.Length)
        for i in 0 .. 2 .. keys.Length - 1 do
            index.Remove keys[i]
        Assert.True(index.LongestProbe() <= 8)
        Assert.Equal(1500, index.Count)

[<Fact>]
let ``HashIndex measures its longest probe exactly, and refuses to remove a hash it does not hold`` () =
    let index = HashIndex()
    Assert.Equal(0, index.LongestProbe())
    // Five keys with one home slot: they sit at distances 0 … 4 from it.
    for i in 0..4 do
        index.Add(uint64 i * inverse, i)
    Assert.Equal(4, index.LongestProbe())
    index.Remove 0UL
    Assert.Equal(3, index.LongestProbe())
    Assert.Contains("is not held", Assert.Throws<InvalidOperationException>(fun () -> index.Remove 12345UL).Message)
    Assert.Equal(4, index.Count)
