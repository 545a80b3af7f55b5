using System;
using System.Collections.Generic;

namespace PagedKv.Allocation;

/// <summary>
/// The seam for eviction policies: which free block <c>allocate</c> hands out, and in what
/// order the free blocks are kept. <see cref="BlockAllocator"/> owns ref counts and hashes and
/// tells the policy every change to the free set; the policy owns only the order.
/// </summary>
/// <remarks>
/// <see cref="LifoPreferUnhashed"/> is the original's policy and the one the spec models.
/// Another policy (LRU over soft-free blocks, an O(1) index of the same order) implements this
/// interface; the notifications below are what an O(1) policy needs.
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
    /// <param name="hasHash">Whether a block currently has a registered hash.</param>
    int TakeForAllocation(Func<int, bool> hasHash);

    /// <summary>Remove a specific free block (a hash hit resurrects it). Precondition: it is free.</summary>
    void Take(int block);

    /// <summary>A free block has just lost its hash (another block took the hash over). With
    /// <see cref="Release"/>'s flag this tells the policy every change of a free block's hash
    /// state, so it can keep hashed and unhashed free blocks apart without asking.</summary>
    void HashDropped(int block);

    /// <summary>An independent copy with the same order (used to plan an allocation without
    /// taking anything).</summary>
    IFreeBlockPolicy Clone();

    /// <summary>The free blocks in the policy's order, bottom (taken last) → top (taken first
    /// when no hash preference applies).</summary>
    IReadOnlyList<int> Order { get; }
}
