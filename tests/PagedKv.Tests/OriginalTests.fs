/// The original's unit tests (paged_pool.rs, `mod tests`), ported one for one against the C#
/// reference implementation.
module PagedKv.Tests.OriginalTests

open System
open Xunit
open PagedKv.Allocation
open PagedKv.Hashing

let private alloc (a: BlockAllocator) =
    match a.TryAllocate() with
    | true, b -> b
    | _ -> failwith "exhausted"

let private allocN (a: BlockAllocator) n =
    match a.TryAllocateN n with
    | true, bs -> bs
    | _ -> failwith "exhausted"

let private free (a: BlockAllocator) (bs: int[]) = a.Free(ReadOnlySpan bs)
let private tryHash (a: BlockAllocator) h = match a.TryAcquireByHash h with | true, b -> Some b | _ -> None
let private chain (tokens: uint32[]) size = BlockHasher.BlockHashChain(ReadOnlySpan tokens, size)

[<Fact>]
let allocator_basic () =
    let a = BlockAllocator(4)
    Assert.Equal(4, a.FreeCount)
    Assert.Equal<int list>([ 0; 1; 2; 3 ], [ for _ in 1..4 -> alloc a ])
    Assert.False(fst (a.TryAllocate()))
    Assert.Equal(0, a.FreeCount)
    free a [| 1; 3 |]
    Assert.Equal(2, a.FreeCount)
    Assert.Equal(3, alloc a)
    Assert.Equal(1, alloc a)

[<Fact>]
let allocator_atomic_n_failure () =
    let a = BlockAllocator(3)
    alloc a |> ignore
    alloc a |> ignore
    Assert.False(fst (a.TryAllocateN 2))
    Assert.Equal(1, a.FreeCount)

[<Fact>]
let allocator_peak_tracking () =
    let a = BlockAllocator(8)
    let blocks = allocN a 5
    Assert.Equal(5, a.PeakInUse)
    free a blocks
    Assert.Equal(5, a.PeakInUse)
    allocN a 3 |> ignore
    Assert.Equal(5, a.PeakInUse)

[<Fact>]
let refcount_allocate_starts_at_one () =
    let a = BlockAllocator(4)
    Assert.Equal(1, a.RefCount(alloc a))

[<Fact>]
let refcount_acquire_increments () =
    let a = BlockAllocator(4)
    let b = alloc a
    a.Acquire b
    a.Acquire b
    Assert.Equal(3, a.RefCount b)

[<Fact>]
let refcount_free_decrements_no_physical_release () =
    let a = BlockAllocator(4)
    let b = alloc a
    a.Acquire b
    free a [| b |]
    Assert.Equal(1, a.RefCount b)
    Assert.Equal(3, a.FreeCount)

[<Fact>]
let refcount_free_physical_release_at_zero () =
    let a = BlockAllocator(4)
    let b = alloc a
    a.Acquire b
    free a [| b |]
    free a [| b |]
    Assert.Equal(0, a.RefCount b)
    Assert.Equal(4, a.FreeCount)

[<Fact>]
let refcount_legacy_single_ref_behaviour_unchanged () =
    let a = BlockAllocator(2)
    let b = alloc a
    Assert.Equal(1, a.FreeCount)
    free a [| b |]
    Assert.Equal(2, a.FreeCount)
    Assert.Equal(0, a.RefCount b)
    Assert.Equal(b, alloc a)

[<Fact>]
let refcount_bulk_acquire_and_release () =
    let a = BlockAllocator(8)
    let blocks = allocN a 3
    a.AcquireMany(ReadOnlySpan blocks)
    for b in blocks do
        Assert.Equal(2, a.RefCount b)
    free a blocks
    Assert.Equal(5, a.FreeCount)
    free a blocks
    Assert.Equal(8, a.FreeCount)

[<Fact>]
let block_hash_chain_basic () =
    let c = chain [| 1u .. 8u |] 4
    Assert.Equal(2, c.Length)
    Assert.NotEqual(c[0], c[1])

[<Fact>]
let block_hash_chain_identical_prefix_same_hashes () =
    let ca = chain [| 10u; 20u; 30u; 40u; 50u; 60u; 70u; 80u |] 4
    let cb = chain [| 10u; 20u; 30u; 40u; 99u; 99u; 99u; 99u |] 4
    Assert.Equal(ca[0], cb[0])
    Assert.NotEqual(ca[1], cb[1])

[<Fact>]
let block_hash_chain_drops_partial_trailing () =
    Assert.Equal(1, (chain [| 1u .. 7u |] 4).Length)

[<Fact>]
let hash_table_register_and_acquire_live () =
    let a = BlockAllocator(4)
    let b = alloc a
    a.RegisterBlockHash(b, 0xDEADBEEFUL)
    Assert.Equal(1, a.HashTableSize)
    Assert.Equal(Some b, tryHash a 0xDEADBEEFUL)
    Assert.Equal(2, a.RefCount b)

[<Fact>]
let hash_table_soft_free_resurrection () =
    let a = BlockAllocator(4)
    let b = alloc a
    a.RegisterBlockHash(b, 0xABCD1234UL)
    free a [| b |]
    Assert.Equal(4, a.FreeCount)
    Assert.Equal(0, a.RefCount b)
    Assert.Equal(Some b, tryHash a 0xABCD1234UL)
    Assert.Equal(1, a.RefCount b)
    Assert.Equal(3, a.FreeCount)

[<Fact>]
let hash_table_miss_returns_none () =
    let a = BlockAllocator(4)
    let b = alloc a
    a.RegisterBlockHash(b, 1UL)
    Assert.Equal(None, tryHash a 99UL)
    Assert.Equal(1, a.RefCount b)

[<Fact>]
let hash_table_evicts_on_realloc () =
    let a = BlockAllocator(2)
    let b1 = alloc a
    alloc a |> ignore
    a.RegisterBlockHash(b1, 0x1234UL)
    free a [| b1 |]
    Assert.Equal(1, a.HashTableSize)
    Assert.Equal(b1, alloc a)
    Assert.Equal(0, a.HashTableSize)
    Assert.Equal(None, tryHash a 0x1234UL)

[<Fact>]
let allocator_prefers_unhashed_free_block_over_soft_cached_hash () =
    let a = BlockAllocator(3)
    let cached = alloc a
    a.RegisterBlockHash(cached, 0xCAFEBABEUL)
    free a [| cached |]
    Assert.Equal(1, a.HashTableSize)
    Assert.NotEqual(cached, alloc a)
    Assert.Equal(1, a.HashTableSize)
    Assert.Equal(Some cached, tryHash a 0xCAFEBABEUL)

[<Fact>]
let hash_table_replace_block_hash () =
    let a = BlockAllocator(4)
    let b = alloc a
    a.RegisterBlockHash(b, 1UL)
    a.RegisterBlockHash(b, 2UL)
    Assert.Equal(1, a.HashTableSize)
    Assert.Equal(None, tryHash a 1UL)
    Assert.Equal(Some b, tryHash a 2UL)
