using System;
using System.Collections.Generic;
using System.Diagnostics;

namespace PagedKv.Allocation;

/// <summary>
/// Least-recently-used free queue after vLLM v1's <c>FreeKVCacheBlockQueue</c>: a doubly linked
/// list threaded through the blocks in two int arrays, every operation O(1).
/// </summary>
/// <remarks>
/// Ordering rules, stated here once:
/// <list type="bullet">
/// <item>Reset: fresh blocks 0 … N−1 from head to tail.</item>
/// <item>TakeForAllocation takes the head.</item>
/// <item>Release: a block whose ref count reaches 0 goes to the tail if it has a hash (its
/// content is kept longest for a later hit), to the head if not (nothing to keep: reused first).</item>
/// <item>HashDropped: a free block that loses its hash (another block took the hash over)
/// moves to the head, as an unhashed release would have put it.</item>
/// <item>Take (a hash hit on a soft-free block) unlinks it wherever it is.</item>
/// </list>
/// <see cref="Order"/> lists the queue from tail to head, so that, as for the stack, its last
/// entry is the block allocate takes next.
/// </remarks>
public sealed class Lru : IFreeBlockPolicy
{
    private const int None = -1;
    private int[] prev = [];
    private int[] next = [];
    private int[] undo = [];
    private int head = None;
    private int tail = None;

    public int Count { get; private set; }

    public IEnumerable<int> Order
    {
        get
        {
            for (int block = tail; block != None; block = prev[block])
            {
                yield return block;
            }
        }
    }

    public void Reset(int capacity)
    {
        Debug.Assert(capacity >= 0);
        prev = new int[capacity];
        next = new int[capacity];
        head = tail = None;
        Count = 0;
        for (int block = 0; block < capacity; block++)
        {
            LinkAtTail(block);
        }
    }

    public void Release(int block, bool hasHash)
    {
        if (hasHash)
        {
            LinkAtTail(block);
        }
        else
        {
            LinkAtHead(block);
        }
    }

    public int TakeForAllocation()
    {
        Debug.Assert(Count > 0, "TakeForAllocation on an empty queue");
        int block = head;
        Unlink(block);
        return block;
    }

    public void Take(int block) => Unlink(block);

    public void HashDropped(int block)
    {
        Unlink(block);
        LinkAtHead(block);
    }

    /// <summary>Unlinks the taken blocks (noting their neighbours), walks the queue from the head,
    /// then links the taken blocks back in reverse order between the same neighbours.</summary>
    public void Plan(ReadOnlySpan<int> taken, Span<int> blocks)
    {
        Debug.Assert(taken.Length + blocks.Length <= Count);
        if (undo.Length < 2 * taken.Length)
        {
            undo = new int[Math.Max(2 * taken.Length, 2 * undo.Length)];
        }
        for (int i = 0; i < taken.Length; i++)
        {
            undo[2 * i] = prev[taken[i]];
            undo[2 * i + 1] = next[taken[i]];
            Unlink(taken[i]);
        }
        int block = head;
        for (int i = 0; i < blocks.Length; i++)
        {
            blocks[i] = block;
            block = next[block];
        }
        for (int i = taken.Length - 1; i >= 0; i--)
        {
            LinkBetween(taken[i], undo[2 * i], undo[2 * i + 1]);
        }
    }

    public string? Inconsistency(Func<int, bool> hasHash)
    {
        int count = 0;
        int before = None;
        for (int block = head; block != None; block = next[block])
        {
            if (prev[block] != before || ++count > Count)
            {
                return $"block {block} links back to {prev[block]}, not {before}, or the queue holds more than {Count} blocks";
            }
            before = block;
        }
        return before == tail && count == Count ? null : $"the queue from the head ends at {before} after {count} blocks; tail {tail}, count {Count}";
    }

    private void LinkAtTail(int block) => LinkBetween(block, tail, None);

    private void LinkAtHead(int block) => LinkBetween(block, None, head);

    /// <summary>Links <paramref name="block"/> between two adjacent entries (None: the end).</summary>
    private void LinkBetween(int block, int before, int after)
    {
        prev[block] = before;
        next[block] = after;
        if (before == None)
        {
            head = block;
        }
        else
        {
            next[before] = block;
        }
        if (after == None)
        {
            tail = block;
        }
        else
        {
            prev[after] = block;
        }
        Count++;
    }

    private void Unlink(int block)
    {
        int before = prev[block];
        int after = next[block];
        if (before == None)
        {
            head = after;
        }
        else
        {
            next[before] = after;
        }
        if (after == None)
        {
            tail = before;
        }
        else
        {
            prev[after] = before;
        }
        Count--;
    }
}
