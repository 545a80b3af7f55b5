using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace PagedKv.Allocation;

/// <summary>
/// Paged-KV block allocator: a free list, a u16 reference count per block, a peak-in-use
/// watermark, and a block-hash table for prefix caching whose soft-free blocks (ref 0, content
/// intact, hash kept) a hash hit resurrects. Same results as the original
/// (ferrum <c>paged_pool.rs</c>) on every history the original is defined on; see
/// docs/divergences.md for where it is not.
/// </summary>
/// <remarks>
/// Error discipline: exhaustion is an expected outcome and is reported by <c>Try…</c> returning
/// false. Misuse throws <see cref="PagedKvException"/>; every method validates its whole input
/// (batches included) before its first write, so a throwing call changes nothing. After every
/// mutation a Debug build asserts all invariants (<see cref="AllocatorInvariants"/>);
/// <see cref="Validate"/> checks them in any build.
/// </remarks>
public sealed partial class BlockAllocator
{
    private readonly IFreeBlockPolicy free;
    private readonly ushort[] refCounts;
    private readonly Dictionary<ulong, int> hashToBlock = new();
    private readonly ulong?[] blockToHash;
    private readonly Func<int, bool> hasHash;

    /// <summary>A fresh allocator with the original's policy (<see cref="LifoPreferUnhashed"/>).</summary>
    public BlockAllocator(int capacity)
        : this(capacity, new LifoPreferUnhashed())
    {
    }

    /// <summary>A fresh allocator whose free order is kept by <paramref name="policy"/>.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.CapacityOutOfRange"/>.</exception>
    public BlockAllocator(int capacity, IFreeBlockPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (capacity < 0 || capacity > Limits.MaxCapacity)
        {
            throw new PagedKvException(Fault.CapacityOutOfRange, capacity,
                $"capacity={capacity} is outside [0, {Limits.MaxCapacity}]");
        }
        Capacity = capacity;
        free = policy;
        refCounts = new ushort[capacity];
        blockToHash = new ulong?[capacity];
        hasHash = block => blockToHash[block].HasValue;
        free.Reset(capacity);
        AssertInvariants(0);
    }

    /// <summary>Total number of blocks.</summary>
    public int Capacity { get; }

    /// <summary>Number of free blocks (fresh and soft-free).</summary>
    public int FreeCount => free.Count;

    /// <summary>Number of blocks with ref count ≥ 1.</summary>
    public int InUse => Capacity - free.Count;

    /// <summary>The largest <see cref="InUse"/> ever reached. Never decreases.</summary>
    public int PeakInUse { get; private set; }

    /// <summary>Number of registered hashes (live and soft-free blocks).</summary>
    public int HashTableSize => hashToBlock.Count;

    /// <summary>Reference count of <paramref name="block"/>: 0 free, n ≥ 1 held by n owners.</summary>
    public int RefCount(int block)
    {
        CheckBlock(block);
        return refCounts[block];
    }

    /// <summary>The hash registered for <paramref name="block"/>, if any.</summary>
    public bool TryGetBlockHash(int block, out ulong hash)
    {
        CheckBlock(block);
        hash = blockToHash[block].GetValueOrDefault();
        return blockToHash[block].HasValue;
    }

    /// <summary>Take one free block (ref = 1). False when the pool is exhausted.</summary>
    /// <remarks>Which block: the policy's <see cref="IFreeBlockPolicy.TakeForAllocation"/>.
    /// A stale hash on the taken block is dropped: its content is about to be overwritten.</remarks>
    public bool TryAllocate(out int block)
    {
        if (free.Count == 0)
        {
            block = -1;
            return false;
        }
        int peakBefore = PeakInUse;
        block = TakeForAllocation();
        RaisePeak();
        AssertInvariants(peakBefore);
        return true;
    }

    /// <summary>Take <paramref name="n"/> free blocks, all or nothing, in the order
    /// <see cref="TryAllocate"/> would take them one by one. False (nothing taken) when fewer
    /// than <paramref name="n"/> are free.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.CountOutOfRange"/> when n &lt; 0.</exception>
    public bool TryAllocateN(int n, [NotNullWhen(true)] out int[]? blocks)
    {
        CheckCount(n);
        if (free.Count < n)
        {
            blocks = null;
            return false;
        }
        int peakBefore = PeakInUse;
        blocks = new int[n];
        for (int i = 0; i < n; i++)
        {
            blocks[i] = TakeForAllocation();
        }
        RaisePeak();
        AssertInvariants(peakBefore);
        return true;
    }

    /// <summary>The blocks <see cref="TryAllocateN"/> would return now, in order, without taking
    /// them: lets a caller prepare everything that can fail (a device copy) before committing.
    /// False when fewer than <paramref name="n"/> are free.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.CountOutOfRange"/> when n &lt; 0.</exception>
    public bool TryPlanAllocation(int n, [NotNullWhen(true)] out int[]? blocks)
    {
        CheckCount(n);
        if (free.Count < n)
        {
            blocks = null;
            return false;
        }
        // Taken blocks leave the free list, so dropping their hashes cannot change later
        // choices: running the policy on a copy is exactly what TryAllocateN will do.
        var plan = free.Clone();
        blocks = new int[n];
        for (int i = 0; i < n; i++)
        {
            blocks[i] = plan.TakeForAllocation(hasHash);
        }
        return true;
    }

    /// <summary>Throws exactly what <see cref="Free"/> would throw for <paramref name="blocks"/>,
    /// and changes nothing: lets a caller check a free before doing work it would have to undo.</summary>
    public void EnsureCanFree(ReadOnlySpan<int> blocks)
    {
        CheckBlocks(blocks);
        var pending = new Dictionary<int, int>();
        foreach (int block in blocks)
        {
            int times = pending.GetValueOrDefault(block) + 1;
            pending[block] = times;
            if (times > refCounts[block])
            {
                throw new PagedKvException(Fault.FreeOfFreeBlock, block,
                    $"free: block {block} has ref_count={refCounts[block]} and is freed {times} time(s) (double free)");
            }
        }
    }

    /// <summary>Drop one reference from each listed block, in order; a block reaching 0 is
    /// released to the policy (soft-free: it keeps its hash until reused).</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.BlockOutOfRange"/> for the first id
    /// outside [0, capacity); else <see cref="Fault.FreeOfFreeBlock"/> for the first block the
    /// batch names more often than its ref count. Nothing is freed then.</exception>
    public void Free(ReadOnlySpan<int> blocks)
    {
        EnsureCanFree(blocks);
        int peakBefore = PeakInUse;
        foreach (int block in blocks)
        {
            refCounts[block]--;
            if (refCounts[block] == 0)
            {
                free.Release(block, blockToHash[block].HasValue);
            }
        }
        AssertInvariants(peakBefore);
    }

    /// <summary>Add one reference to a live block (another owner shares it).</summary>
    /// <exception cref="PagedKvException">As <see cref="AcquireMany"/>.</exception>
    public void Acquire(int block) => AcquireMany(new ReadOnlySpan<int>(in block));

    /// <summary>Add one reference to each listed block, all or nothing.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.BlockOutOfRange"/> for the first id
    /// outside [0, capacity); else, for the first block in batch order that is free,
    /// <see cref="Fault.AcquireOfFreeBlock"/>, or that would pass <see cref="Limits.MaxRefCount"/>,
    /// <see cref="Fault.RefCountOverflow"/>. Nothing is acquired then.</exception>
    public void AcquireMany(ReadOnlySpan<int> blocks)
    {
        CheckBlocks(blocks);
        var pending = new Dictionary<int, int>();
        foreach (int block in blocks)
        {
            if (refCounts[block] == 0)
            {
                throw new PagedKvException(Fault.AcquireOfFreeBlock, block,
                    $"acquire: block {block} is free (ref_count=0)");
            }
            int times = pending.GetValueOrDefault(block) + 1;
            pending[block] = times;
            if (refCounts[block] + times > Limits.MaxRefCount)
            {
                throw new PagedKvException(Fault.RefCountOverflow, block,
                    $"acquire: block {block} would pass ref_count {Limits.MaxRefCount}");
            }
        }
        int peakBefore = PeakInUse;
        foreach (int block in blocks)
        {
            refCounts[block]++;
        }
        AssertInvariants(peakBefore);
    }

    /// <summary>Prefix-cache lookup. Miss: false, nothing changes. Hit on a live block: one more
    /// reference. Hit on a soft-free block: resurrected (taken off the free list, ref = 1).</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.RefCountOverflow"/> when the live
    /// block already has <see cref="Limits.MaxRefCount"/> references.</exception>
    public bool TryAcquireByHash(ulong hash, out int block)
    {
        if (!hashToBlock.TryGetValue(hash, out block))
        {
            block = -1;
            return false;
        }
        int peakBefore = PeakInUse;
        if (refCounts[block] == 0)
        {
            free.Take(block);
            refCounts[block] = 1;
            RaisePeak();
        }
        else
        {
            if (refCounts[block] == Limits.MaxRefCount)
            {
                throw new PagedKvException(Fault.RefCountOverflow, block,
                    $"try_acquire_by_hash: block {block} would pass ref_count {Limits.MaxRefCount}");
            }
            refCounts[block]++;
        }
        AssertInvariants(peakBefore);
        return true;
    }

    /// <summary>Tag a live block's content with <paramref name="hash"/>. The block's previous
    /// hash, if any, is dropped; the same hash again changes nothing. If the hash belonged to
    /// another block, the last writer wins and that block loses its hash entirely (divergence
    /// D2: the original leaves it a stale reverse entry).</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.BlockOutOfRange"/>;
    /// <see cref="Fault.RegisterOnFreeBlock"/> when the block's ref count is 0.</exception>
    public void RegisterBlockHash(int block, ulong hash)
    {
        CheckBlock(block);
        if (refCounts[block] == 0)
        {
            throw new PagedKvException(Fault.RegisterOnFreeBlock, block,
                $"register_block_hash: block {block} is free (ref_count=0)");
        }
        int peakBefore = PeakInUse;
        DropHash(block);
        if (hashToBlock.TryGetValue(hash, out int previous))
        {
            DropHash(previous);
            if (refCounts[previous] == 0)
            {
                free.HashDropped(previous);
            }
        }
        hashToBlock[hash] = block;
        blockToHash[block] = hash;
        AssertInvariants(peakBefore);
    }

    private int TakeForAllocation()
    {
        int block = free.TakeForAllocation(hasHash);
        Debug.Assert(refCounts[block] == 0, "the policy yielded a block with references");
        DropHash(block);
        refCounts[block] = 1;
        return block;
    }

    private void DropHash(int block)
    {
        if (blockToHash[block] is ulong hash)
        {
            Debug.Assert(hashToBlock[hash] == block);
            hashToBlock.Remove(hash);
            blockToHash[block] = null;
        }
    }

    private void RaisePeak() => PeakInUse = Math.Max(PeakInUse, InUse);

    private void CheckBlock(int block)
    {
        if ((uint)block >= (uint)Capacity)
        {
            throw new PagedKvException(Fault.BlockOutOfRange, block,
                $"block {block} is outside [0, {Capacity})");
        }
    }

    private static void CheckCount(int n)
    {
        if (n < 0)
        {
            throw new PagedKvException(Fault.CountOutOfRange, n, $"allocate_n: n={n} is negative");
        }
    }

    private void CheckBlocks(ReadOnlySpan<int> blocks)
    {
        foreach (int block in blocks)
        {
            CheckBlock(block);
        }
    }
}
