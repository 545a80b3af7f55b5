using System;
using System.Collections.Generic;
using System.Diagnostics;

namespace PagedKv.Allocation;

/// <summary>
/// The original's free list: a stack (a <c>Vec</c> whose end is the top), with the original's
/// results block for block, at O(log₆₄ capacity) per operation instead of its O(free count).
/// </summary>
/// <remarks>
/// Ordering rules, stated here once:
/// <list type="bullet">
/// <item>Reset: blocks capacity−1 … 0 bottom → top, so pops yield 0, 1, 2, ….</item>
/// <item>Release pushes on top (LIFO: the most recently freed block is reused first).</item>
/// <item>TakeForAllocation takes the entry nearest the top whose block has no hash; if every
/// free block has one, the top entry. Take removes a given block. Both remove by
/// swap-remove: the top entry moves into the vacated slot.</item>
/// </list>
/// Index: <c>slotOf</c> maps a block to its stack slot (a hash hit finds its block at once), and
/// <c>unhashed</c> marks the slots whose block has no hash, so "the entry nearest the top with
/// no hash" is <see cref="SlotBitmap.Highest"/>. Every push, swap-remove and hash change updates both.
/// </remarks>
public sealed class LifoPreferUnhashed : IFreeBlockPolicy
{
    private int[] stack = [];
    private int[] slotOf = [];
    private SlotBitmap unhashed = new(0);
    private int[] undo = [];

    public int Count { get; private set; }

    public IEnumerable<int> Order => new ArraySegment<int>(stack, 0, Count);

    public void Reset(int capacity)
    {
        Debug.Assert(capacity >= 0);
        stack = new int[capacity];
        slotOf = new int[capacity];
        unhashed = new SlotBitmap(capacity);
        undo = [];
        Count = capacity;
        for (int slot = 0; slot < capacity; slot++)
        {
            int block = capacity - 1 - slot;
            stack[slot] = block;
            slotOf[block] = slot;
            unhashed.Add(slot);
        }
    }

    /// <summary>Pushes on top.</summary>
    public void Release(int block, bool hasHash)
    {
        int slot = Count++;
        stack[slot] = block;
        slotOf[block] = slot;
        unhashed.Set(slot, !hasHash);
    }

    public int TakeForAllocation()
    {
        Debug.Assert(Count > 0, "TakeForAllocation on an empty free list");
        // An unhashed top entry is the one nearest the top (the common case, one bit test);
        // otherwise the bitmap's descent finds it.
        int top = Count - 1;
        int slot = unhashed.Contains(top) ? top : unhashed.Highest();
        return RemoveAt(slot < 0 ? top : slot);
    }

    public void Take(int block)
    {
        Debug.Assert(slotOf[block] < Count && stack[slotOf[block]] == block, "Take of a block that is not free");
        RemoveAt(slotOf[block]);
    }

    public void HashDropped(int block) => unhashed.Add(slotOf[block]);

    /// <summary>Takes the blocks (the given ones, then allocation's choices), then puts them back
    /// in reverse order exactly where they were (each swap-remove undone), so the stack and its
    /// index are as before.</summary>
    public void Plan(ReadOnlySpan<int> taken, Span<int> blocks)
    {
        int steps = taken.Length + blocks.Length;
        Debug.Assert(steps <= Count);
        if (undo.Length < steps)
        {
            undo = new int[Math.Max(steps, 2 * undo.Length)];
        }
        for (int i = 0; i < taken.Length; i++)
        {
            int slot = slotOf[taken[i]];
            undo[i] = 2 * slot + (unhashed.Contains(slot) ? 1 : 0);
            RemoveAt(slot);
        }
        for (int i = 0; i < blocks.Length; i++)
        {
            int slot = unhashed.Highest();
            // Slot and whether its block was unhashed (it was, unless no unhashed block was left).
            undo[taken.Length + i] = slot < 0 ? 2 * (Count - 1) : 2 * slot + 1;
            blocks[i] = RemoveAt(undo[taken.Length + i] >> 1);
        }
        for (int i = steps - 1; i >= 0; i--)
        {
            PutBack(i < taken.Length ? taken[i] : blocks[i - taken.Length], undo[i] >> 1, (undo[i] & 1) == 1);
        }
    }

    public string? Inconsistency(Func<int, bool> hasHash)
    {
        if (unhashed.Inconsistency() is string bitmap)
        {
            return bitmap;
        }
        for (int slot = 0; slot < stack.Length; slot++)
        {
            bool used = slot < Count;
            if (used && slotOf[stack[slot]] != slot)
            {
                return $"stack slot {slot} holds block {stack[slot]}, whose index says slot {slotOf[stack[slot]]}";
            }
            bool marked = unhashed.Contains(slot);
            if (marked != (used && !hasHash(stack[slot])))
            {
                return $"stack slot {slot} is marked {(marked ? "unhashed" : "hashed or unused")} but holds {(used ? $"block {stack[slot]}, hashed={hasHash(stack[slot])}" : "nothing")}";
            }
        }
        return null;
    }

    /// <summary>Swap-remove: the top entry moves into <paramref name="slot"/>.</summary>
    private int RemoveAt(int slot)
    {
        int block = stack[slot];
        int top = --Count;
        int moved = stack[top];
        stack[slot] = moved;
        slotOf[moved] = slot;
        unhashed.Set(slot, unhashed.Contains(top));
        unhashed.Remove(top);
        return block;
    }

    /// <summary>Undoes <see cref="RemoveAt"/>(<paramref name="slot"/>), which returned
    /// <paramref name="block"/>: the entry that moved into the slot goes back on top, with its mark.</summary>
    private void PutBack(int block, int slot, bool blockUnhashed)
    {
        int top = Count++;
        int moved = stack[slot];
        stack[top] = moved;
        slotOf[moved] = top;
        unhashed.Set(top, unhashed.Contains(slot));
        stack[slot] = block;
        slotOf[block] = slot;
        unhashed.Set(slot, blockUnhashed);
    }
}
