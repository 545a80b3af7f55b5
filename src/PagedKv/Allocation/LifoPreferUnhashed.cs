using System;
using System.Collections.Generic;
using System.Diagnostics;

namespace PagedKv.Allocation;

/// <summary>
/// The original's free list: a stack (a <c>Vec</c> whose end is the top).
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
/// Cost: TakeForAllocation and Take are O(free count), as in the original.
/// </remarks>
public sealed class LifoPreferUnhashed : IFreeBlockPolicy
{
    private readonly List<int> stack = new();

    public int Count => stack.Count;

    public IReadOnlyList<int> Order => stack;

    public void Reset(int capacity)
    {
        Debug.Assert(capacity >= 0);
        stack.Clear();
        for (int block = capacity - 1; block >= 0; block--)
        {
            stack.Add(block);
        }
    }

    /// <summary>Pushes on top; the stack's order does not depend on <paramref name="hasHash"/>.</summary>
    public void Release(int block, bool hasHash) => stack.Add(block);

    public int TakeForAllocation(Func<int, bool> hasHash)
    {
        Debug.Assert(stack.Count > 0, "TakeForAllocation on an empty free list");
        int position = stack.Count - 1;
        for (int i = stack.Count - 1; i >= 0; i--)
        {
            if (!hasHash(stack[i]))
            {
                position = i;
                break;
            }
        }
        return SwapRemove(position);
    }

    public void Take(int block)
    {
        int position = stack.LastIndexOf(block);
        Debug.Assert(position >= 0, "Take of a block that is not free");
        SwapRemove(position);
    }

    public IFreeBlockPolicy Clone()
    {
        var copy = new LifoPreferUnhashed();
        copy.stack.AddRange(stack);
        return copy;
    }

    public void HashDropped(int block)
    {
        // The stack's order does not depend on hashes; TakeForAllocation asks at take time.
    }

    private int SwapRemove(int position)
    {
        int block = stack[position];
        int top = stack.Count - 1;
        stack[position] = stack[top];
        stack.RemoveAt(top);
        return block;
    }
}
