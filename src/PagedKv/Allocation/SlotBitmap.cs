using System;
using System.Diagnostics;
using System.Numerics;

namespace PagedKv.Allocation;

/// <summary>
/// A set of slot numbers 0 … size−1 as a hierarchical bitmap: level 0 has one bit per slot;
/// each bit of level k+1 says "word i of level k is not zero". <see cref="Highest"/> descends
/// from the single top word, so every operation touches one word per level: O(log₆₄ size)
/// (4 words at 2^24 slots). Allocates only at construction.
/// </summary>
public sealed class SlotBitmap
{
    private readonly ulong[][] levels;

    /// <summary>An empty set of <paramref name="size"/> slots.</summary>
    public SlotBitmap(int size)
    {
        if (size < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "negative size");
        }
        Size = size;
        int count = 1;
        int words = (size + 63) >> 6;
        while (words > 1)
        {
            words = (words + 63) >> 6;
            count++;
        }
        levels = new ulong[count][];
        words = (size + 63) >> 6;
        for (int level = 0; level < count; level++)
        {
            levels[level] = new ulong[Math.Max(words, 1)];
            words = (words + 63) >> 6;
        }
        Debug.Assert(levels[^1].Length == 1, "the top level is one word");
    }

    public int Size { get; }

    public bool Contains(int slot)
    {
        Debug.Assert((uint)slot < (uint)Size);
        return (levels[0][slot >> 6] & (1UL << slot)) != 0;
    }

    /// <summary>Adds or removes <paramref name="slot"/>.</summary>
    public void Set(int slot, bool member)
    {
        if (member)
        {
            Add(slot);
        }
        else
        {
            Remove(slot);
        }
    }

    public void Add(int slot)
    {
        Debug.Assert((uint)slot < (uint)Size);
        for (int level = 0; level < levels.Length; level++)
        {
            ref ulong word = ref levels[level][slot >> 6];
            bool wasEmpty = word == 0;
            word |= 1UL << slot;
            if (!wasEmpty)
            {
                return;
            }
            slot >>= 6;
        }
    }

    public void Remove(int slot)
    {
        Debug.Assert((uint)slot < (uint)Size);
        for (int level = 0; level < levels.Length; level++)
        {
            ref ulong word = ref levels[level][slot >> 6];
            word &= ~(1UL << slot);
            if (word != 0)
            {
                return;
            }
            slot >>= 6;
        }
    }

    /// <summary>The largest member, or −1 when the set is empty.</summary>
    public int Highest()
    {
        int index = 0;
        for (int level = levels.Length - 1; level >= 0; level--)
        {
            ulong word = levels[level][index];
            if (word == 0)
            {
                Debug.Assert(level == levels.Length - 1, "a summary bit names an empty word");
                return -1;
            }
            index = (index << 6) | (63 - BitOperations.LeadingZeroCount(word));
        }
        return index;
    }

    /// <summary>Null when every summary bit says exactly whether its word is non-zero and no
    /// bit is set at or past <see cref="Size"/>; else what disagrees.</summary>
    public string? Inconsistency()
    {
        for (int level = 0; level + 1 < levels.Length; level++)
        {
            for (int i = 0; i < levels[level].Length; i++)
            {
                bool summary = (levels[level + 1][i >> 6] & (1UL << i)) != 0;
                if (summary != (levels[level][i] != 0))
                {
                    return $"level {level + 1} says word {i} of level {level} is {(summary ? "non-empty" : "empty")}";
                }
            }
        }
        for (int slot = Size; slot < levels[0].Length * 64; slot++)
        {
            if ((levels[0][slot >> 6] & (1UL << slot)) != 0)
            {
                return $"slot {slot} is set past the size {Size}";
            }
        }
        return null;
    }
}
