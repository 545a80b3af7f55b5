using System;
using System.Collections.Generic;

namespace PagedKv.Allocation;

/// <summary>The free-order policies this library implements (the spec's <c>Allocator.Policy</c>).</summary>
public enum Policy
{
    /// <summary>The original's stack, preferring unhashed blocks: <see cref="LifoPreferUnhashed"/>.</summary>
    LifoPreferUnhashed,

    /// <summary>vLLM v1's least-recently-used free queue: <see cref="Lru"/>.</summary>
    Lru,
}

/// <summary>
/// The seam for eviction policies: which free block <c>allocate</c> hands out, and in what
/// order the free blocks are kept. <see cref="BlockAllocator"/> owns ref counts and hashes and
/// tells the policy every change to the free set and to a free block's hash state
/// (<see cref="Release"/>'s flag, <see cref="HashDropped"/>), so a policy never asks.
/// </summary>
/// <remarks>
/// Both policies here are O(1) or O(log₆₄ capacity) per call and allocate nothing after
/// construction. Their order rules are stated once, in each class's remarks; the spec
/// (<c>Allocator.FreeOrder</c>) states the same rules as pure functions.
/// </remarks>
public interface IFreeBlockPolicy
{
    /// <summary>Number of free blocks.</summary>
    int Count { get; }

    /// <summary>Forget everything, then make blocks 0 … capacity−1 free so that successive
    /// allocations on a fresh allocator yield 0, 1, 2, ….</summary>
    void Reset(int capacity);

    /// <summary>A block's ref count has just reached 0; it keeps its hash, if it has one
    /// (<paramref name="hasHash"/>).</summary>
    void Release(int block, bool hasHash);

    /// <summary>Remove and return the block that <c>allocate</c> takes. Precondition: Count &gt; 0.</summary>
    int TakeForAllocation();

    /// <summary>Remove a specific free block (a hash hit resurrects it). Precondition: it is free.</summary>
    void Take(int block);

    /// <summary>A free block has just lost its hash (another block took the hash over).</summary>
    void HashDropped(int block);

    /// <summary>Writes the blocks that <c>blocks.Length</c> successive <see cref="TakeForAllocation"/>
    /// calls would return, in order, after <see cref="Take"/> of each of <paramref name="taken"/>
    /// (in order), and changes nothing. Preconditions: the taken blocks are free and distinct;
    /// taken.Length + blocks.Length ≤ Count.</summary>
    void Plan(ReadOnlySpan<int> taken, Span<int> blocks);

    /// <summary>The free blocks in the policy's order, bottom (taken last) → top (taken next
    /// when no hash preference applies).</summary>
    IEnumerable<int> Order { get; }

    /// <summary>Null when the policy's own index agrees with its order and with
    /// <paramref name="hasHash"/> for every free block; else what disagrees (invariant
    /// <see cref="AllocatorInvariants.FreeOrderIndex"/>). O(capacity).</summary>
    string? Inconsistency(Func<int, bool> hasHash);
}

/// <summary>Creates a policy by its <see cref="Policy"/> name.</summary>
public static class Policies
{
    public static IFreeBlockPolicy Create(Policy policy) => policy switch
    {
        Policy.Lru => new Lru(),
        _ => new LifoPreferUnhashed(),
    };
}
