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
/// (batches included) before it commits anything, so a throwing call changes nothing. After every
/// mutation a Debug build asserts all invariants (<see cref="AllocatorInvariants"/>);
/// <see cref="Validate"/> checks them in any build.
/// <para>Cost: every operation is O(1) or O(log₆₄ capacity) per block it names (the policy's
/// index and the hash table), and none allocates in a steady state, <c>TryAllocateN</c>'s
/// result array aside.</para>
/// </remarks>
public sealed partial class BlockAllocator
{
    private readonly IFreeBlockPolicy free;
    private readonly ushort[] refCounts;
    private readonly ulong[] blockHash;
    private readonly bool[] hasHash;
    private readonly uint[] generations;
    private readonly HashIndex hashToBlock = new();
    private readonly Func<int, bool> hashed;
    private int[] released = [];

    /// <summary>A fresh allocator with the original's policy (<see cref="LifoPreferUnhashed"/>).</summary>
    public BlockAllocator(int capacity)
        : this(capacity, new LifoPreferUnhashed())
    {
    }

    /// <summary>A fresh allocator with the named policy.</summary>
    public BlockAllocator(int capacity, Policy policy)
        : this(capacity, Policies.Create(policy))
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
        blockHash = new ulong[capacity];
        hasHash = new bool[capacity];
        generations = new uint[capacity];
        hashed = block => hasHash[block];
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
        hash = hasHash[block] ? blockHash[block] : 0;
        return hasHash[block];
    }

    /// <summary>The block holding <paramref name="hash"/>, if any; changes nothing (a lookup that
    /// does not acquire, for a caller that checks the block's content before taking it).</summary>
    public bool TryPeekHash(ulong hash, out int block) => hashToBlock.TryGet(hash, out block);

    /// <summary>How many times <paramref name="block"/> has been handed out by an allocation — each
    /// time its content is about to be overwritten (a hash hit does not count: it keeps the
    /// content). Lets a layer above tell whether content it recorded for a block is still there.</summary>
    public uint Generation(int block)
    {
        CheckBlock(block);
        return generations[block];
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
        // choices: the policy's plan is exactly what TryAllocateN will do.
        blocks = new int[n];
        free.Plan([], blocks);
        return true;
    }

    /// <summary>The blocks <see cref="TryAllocateN"/> would return after hash hits resurrect the
    /// soft-free blocks <paramref name="resurrected"/> (in that order), without taking anything:
    /// lets a caller that reuses cached blocks and allocates the rest prepare everything that can
    /// fail before committing. False when fewer than <paramref name="n"/> blocks would be free.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.CountOutOfRange"/> when n &lt; 0;
    /// <see cref="Fault.BlockOutOfRange"/> for an id outside the pool.</exception>
    /// <exception cref="ArgumentException">A listed block that is not free, or listed twice (a caller's bug).</exception>
    public bool TryPlanAllocation(ReadOnlySpan<int> resurrected, int n, [NotNullWhen(true)] out int[]? blocks)
    {
        CheckCount(n);
        CheckBlocks(resurrected);
        for (int i = 0; i < resurrected.Length; i++)
        {
            if (refCounts[resurrected[i]] != 0 || resurrected[..i].Contains(resurrected[i]))
            {
                throw new ArgumentException($"block {resurrected[i]} is not a soft-free block listed once", nameof(resurrected));
            }
        }
        if (free.Count - resurrected.Length < n)
        {
            blocks = null;
            return false;
        }
        blocks = new int[n];
        free.Plan(resurrected, blocks);
        return true;
    }

    /// <summary>Throws exactly what <see cref="Free"/> would throw for <paramref name="blocks"/>,
    /// and changes nothing: lets a caller check a free before doing work it would have to undo.</summary>
    public void EnsureCanFree(ReadOnlySpan<int> blocks)
    {
        CheckBlocks(blocks);
        DecrementAll(blocks);
        foreach (int block in blocks)
        {
            refCounts[block]++;
        }
    }

    /// <summary>Drop one reference from each listed block, in order; a block reaching 0 is
    /// released to the policy (soft-free: it keeps its hash until reused).</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.BlockOutOfRange"/> for the first id
    /// outside [0, capacity); else <see cref="Fault.FreeOfFreeBlock"/> for the first block the
    /// batch names more often than its ref count. Nothing is freed then.</exception>
    public void Free(ReadOnlySpan<int> blocks)
    {
        CheckBlocks(blocks);
        int peakBefore = PeakInUse;
        int reachedZero = DecrementAll(blocks);
        // Released in the order their counts reached 0, as the original pushes while it decrements.
        foreach (int block in released.AsSpan(0, reachedZero))
        {
            free.Release(block, hasHash[block]);
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
        int peakBefore = PeakInUse;
        // Increment as we go; on the first offender, undo the increments made so far.
        for (int i = 0; i < blocks.Length; i++)
        {
            int block = blocks[i];
            if (refCounts[block] == 0 || refCounts[block] == Limits.MaxRefCount)
            {
                var fault = refCounts[block] == 0
                    ? new PagedKvException(Fault.AcquireOfFreeBlock, block, $"acquire: block {block} is free (ref_count=0)")
                    : new PagedKvException(Fault.RefCountOverflow, block, $"acquire: block {block} would pass ref_count {Limits.MaxRefCount}");
                foreach (int done in blocks[..i])
                {
                    refCounts[done]--;
                }
                throw fault;
            }
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
        if (!hashToBlock.TryGet(hash, out block))
        {
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
    /// D2: the original leaves it a stale reverse entry); if that block is free, the policy is told.</summary>
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
        if (hashToBlock.TryGet(hash, out int previous))
        {
            DropHash(previous);
            if (refCounts[previous] == 0)
            {
                free.HashDropped(previous);
            }
        }
        hashToBlock.Add(hash, block);
        blockHash[block] = hash;
        hasHash[block] = true;
        AssertInvariants(peakBefore);
    }

    private int TakeForAllocation()
    {
        int block = free.TakeForAllocation();
        Debug.Assert(refCounts[block] == 0, "the policy yielded a block with references");
        DropHash(block);
        refCounts[block] = 1;
        generations[block]++;
        return block;
    }

    private void DropHash(int block)
    {
        if (hasHash[block])
        {
            hashToBlock.Remove(blockHash[block]);
            hasHash[block] = false;
        }
    }

    /// <summary>Decrements each listed block's ref count in order, noting in <see cref="released"/>
    /// the blocks that reach 0, in that order; returns how many did. On the first block that would
    /// go below 0, restores the ones done and throws <see cref="Fault.FreeOfFreeBlock"/>.</summary>
    private int DecrementAll(ReadOnlySpan<int> blocks)
    {
        if (released.Length < blocks.Length)
        {
            released = new int[Math.Max(blocks.Length, 2 * released.Length)];
        }
        int reachedZero = 0;
        for (int i = 0; i < blocks.Length; i++)
        {
            int block = blocks[i];
            if (refCounts[block] == 0)
            {
                foreach (int done in blocks[..i])
                {
                    refCounts[done]++;
                }
                int times = blocks[..(i + 1)].Count(block);
                throw new PagedKvException(Fault.FreeOfFreeBlock, block,
                    $"free: block {block} has ref_count={refCounts[block]} and is freed {times} time(s) (double free)");
            }
            if (--refCounts[block] == 0)
            {
                released[reachedZero++] = block;
            }
        }
        return reachedZero;
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
