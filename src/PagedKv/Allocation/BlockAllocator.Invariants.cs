using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Linq;

namespace PagedKv.Allocation;

/// <summary>
/// The allocator's invariants, each named once. <see cref="BlockAllocator.Validate"/> checks
/// them; Debug builds assert them after every mutation. The F# spec's <c>Allocator.invariants</c>
/// states the same properties of the model under the same names.
/// </summary>
public static class AllocatorInvariants
{
    /// <summary>Every block id held anywhere (free list, hash table) is in [0, capacity).</summary>
    public const string IdsInRange = "ids-in-range";

    /// <summary>Free-list entries are distinct and are exactly the blocks with ref count 0.</summary>
    public const string FreeListIsRefZero = "free-list-is-ref-zero";

    /// <summary>free + live = capacity.</summary>
    public const string FreePlusLive = "free-plus-live";

    /// <summary>hash → block and block → hash are inverse bijections, and a lookup finds every
    /// hash the table holds.</summary>
    public const string HashBijection = "hash-bijection";

    /// <summary>The free-order policy's own index agrees with its order and with the blocks'
    /// hash state (the stack's slot index and unhashed-slot bitmap; the queue's links).
    /// Implementation only: the spec has no index to disagree with.</summary>
    public const string FreeOrderIndex = "free-order-index";

    /// <summary>in use ≤ peak ≤ capacity, and peak never decreases (checked across mutations).</summary>
    public const string PeakBounds = "peak-bounds";
}

/// <summary>Full observable state: what the differential tests compare with the spec.</summary>
/// <param name="FreeList">Free blocks, bottom → top.</param>
/// <param name="RefCounts">Ref count of every block, by id.</param>
/// <param name="HashTable">(hash, block) pairs, ascending by hash.</param>
/// <param name="Generations">How often each block was handed out by an allocation, by id.</param>
public sealed record AllocatorSnapshot(
    int Capacity,
    int[] FreeList,
    int[] RefCounts,
    (ulong Hash, int Block)[] HashTable,
    int PeakInUse,
    uint[] Generations);

public sealed partial class BlockAllocator
{
    /// <summary>A copy of the full observable state.</summary>
    public AllocatorSnapshot Snapshot() => new(
        Capacity,
        free.Order.ToArray(),
        refCounts.Select(r => (int)r).ToArray(),
        hashToBlock.Pairs.OrderBy(p => p.Hash).ToArray(),
        PeakInUse,
        (uint[])generations.Clone());

    /// <summary>Checks every invariant; throws <see cref="InvariantViolationException"/> naming
    /// the first that fails. Always on (not only in Debug). O(capacity).</summary>
    public void Validate()
    {
        if (FirstViolation() is (string name, string detail))
        {
            throw new InvariantViolationException(name, detail);
        }
    }

    [Conditional("DEBUG")]
    [ExcludeFromCodeCoverage(Justification = "Debug-only assertion: its failing branch is unreachable on a correct implementation, and Validate() checks the same invariants (tested).")]
    private void AssertInvariants(int peakBefore)
    {
        Debug.Assert(PeakInUse >= peakBefore, $"{AllocatorInvariants.PeakBounds}: peak fell from {peakBefore} to {PeakInUse}");
        var violation = FirstViolation();
        Debug.Assert(violation is null, $"{violation?.Name}: {violation?.Detail}");
    }

    private (string Name, string Detail)? FirstViolation()
    {
        var order = new List<int>(free.Count);
        order.AddRange(free.Order);
        var table = new List<(ulong Hash, int Block)>(hashToBlock.Count);
        table.AddRange(hashToBlock.Pairs);
        foreach (int block in order)
        {
            if ((uint)block >= (uint)Capacity)
            {
                return (AllocatorInvariants.IdsInRange, $"block {block} held but capacity is {Capacity}");
            }
        }
        foreach (var (_, block) in table)
        {
            if ((uint)block >= (uint)Capacity)
            {
                return (AllocatorInvariants.IdsInRange, $"block {block} held but capacity is {Capacity}");
            }
        }

        var onFreeList = new bool[Capacity];
        foreach (int block in order)
        {
            if (onFreeList[block] || refCounts[block] != 0)
            {
                return (AllocatorInvariants.FreeListIsRefZero,
                    $"block {block} on the free list twice or with ref_count {refCounts[block]}");
            }
            onFreeList[block] = true;
        }
        int live = 0;
        int reverse = 0;
        for (int block = 0; block < Capacity; block++)
        {
            live += refCounts[block] > 0 ? 1 : 0;
            reverse += hasHash[block] ? 1 : 0;
        }
        if (order.Count != free.Count || order.Count + live != Capacity)
        {
            return (AllocatorInvariants.FreePlusLive, $"free {free.Count} ({order.Count} listed) + live {live} != capacity {Capacity}");
        }

        foreach (var (hash, block) in table)
        {
            if (!hasHash[block] || blockHash[block] != hash || !hashToBlock.TryGet(hash, out int found) || found != block)
            {
                return (AllocatorInvariants.HashBijection, $"hash {hash} → block {block} but block → {(hasHash[block] ? blockHash[block] : "none")}");
            }
        }
        if (reverse != hashToBlock.Count || table.Count != hashToBlock.Count || hashToBlock.Inconsistency() is not null)
        {
            return (AllocatorInvariants.HashBijection, $"{reverse} blocks have a hash, the table holds {table.Count} and counts {hashToBlock.Count}; {hashToBlock.Inconsistency()}");
        }

        if (PeakInUse < InUse || PeakInUse > Capacity)
        {
            return (AllocatorInvariants.PeakBounds, $"peak {PeakInUse}, in use {InUse}, capacity {Capacity}");
        }

        if (free.Inconsistency(hashed) is string index)
        {
            return (AllocatorInvariants.FreeOrderIndex, index);
        }
        return null;
    }
}
