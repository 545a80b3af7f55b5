using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Numerics;

namespace PagedKv.Allocation;

/// <summary>
/// The block-hash table, hash → block: open addressing with linear probing over one array of
/// (hash, block) entries, so a lookup is usually one cache line. Deletion shifts later entries
/// of the probe run back (no tombstones), so lookups never slow down with churn.
/// </summary>
/// <remarks>
/// Size: a power of two, at most 3/4 full; it doubles when an insert would pass that, so it
/// allocates only when the table reaches a size it never had (never in a steady state), and
/// never holds more than 2 × (entries it ever held) + 16 slots. The slot of a hash is the top
/// bits of hash × 2^64/φ (Fibonacci hashing), so clustered keys (0, 1, 2, …) spread out.
/// </remarks>
public sealed class HashIndex
{
    private const int MinSlots = 16;
    private Entry[] entries = new Entry[MinSlots];
    private int shift = 64 - BitOperations.Log2(MinSlots);

    /// <summary>Number of hashes held.</summary>
    public int Count { get; private set; }

    /// <summary>The table's size: a power of two, at least 16, at most 3/4 full.</summary>
    public int Slots => entries.Length;

    /// <summary>The longest distance of an entry from its home slot: how clustered the table is
    /// (a lookup probes at most this many slots past the home slot).</summary>
    public int LongestProbe()
    {
        int mask = entries.Length - 1;
        int longest = 0;
        for (int slot = 0; slot < entries.Length; slot++)
        {
            if (entries[slot].BlockPlusOne != 0)
            {
                longest = Math.Max(longest, (slot - Home(entries[slot].Hash)) & mask);
            }
        }
        return longest;
    }

    /// <summary>The block holding <paramref name="hash"/>, if any.</summary>
    public bool TryGet(ulong hash, out int block)
    {
        int mask = entries.Length - 1;
        for (int slot = Home(hash); ; slot = (slot + 1) & mask)
        {
            ref Entry e = ref entries[slot];
            if (e.BlockPlusOne == 0)
            {
                block = -1;
                return false;
            }
            if (e.Hash == hash)
            {
                block = e.BlockPlusOne - 1;
                return true;
            }
        }
    }

    /// <summary>Maps <paramref name="hash"/> to <paramref name="block"/>. Precondition: the hash is not held.</summary>
    public void Add(ulong hash, int block)
    {
        Debug.Assert(block >= 0 && !TryGet(hash, out _));
        if (4 * (Count + 1) > 3 * entries.Length)
        {
            Grow();
        }
        Place(hash, block);
        Count++;
    }

    /// <summary>Removes <paramref name="hash"/>.</summary>
    /// <exception cref="InvalidOperationException">The hash is not held (a caller's bug).</exception>
    public void Remove(ulong hash)
    {
        int mask = entries.Length - 1;
        int hole = Home(hash);
        while (entries[hole].Hash != hash || entries[hole].BlockPlusOne == 0)
        {
            if (entries[hole].BlockPlusOne == 0)
            {
                throw new InvalidOperationException($"hash {hash} is not held");
            }
            hole = (hole + 1) & mask;
        }
        // Backward shift: move later entries of the run into the hole when their home allows it.
        for (int slot = (hole + 1) & mask; entries[slot].BlockPlusOne != 0; slot = (slot + 1) & mask)
        {
            int home = Home(entries[slot].Hash);
            // The entry may move back to the hole iff the hole lies on its probe path home → slot.
            if (((slot - home) & mask) >= ((slot - hole) & mask))
            {
                entries[hole] = entries[slot];
                hole = slot;
            }
        }
        entries[hole] = default;
        Count--;
    }

    /// <summary>Every (hash, block) pair, in no particular order.</summary>
    public IEnumerable<(ulong Hash, int Block)> Pairs
    {
        get
        {
            foreach (Entry e in entries)
            {
                if (e.BlockPlusOne != 0)
                {
                    yield return (e.Hash, e.BlockPlusOne - 1);
                }
            }
        }
    }

    /// <summary>Null when every entry is reachable from its home slot by an unbroken probe run
    /// and <see cref="Count"/> is the number of entries; else what disagrees.</summary>
    public string? Inconsistency()
    {
        int mask = entries.Length - 1;
        int held = 0;
        for (int slot = 0; slot < entries.Length; slot++)
        {
            if (entries[slot].BlockPlusOne == 0)
            {
                continue;
            }
            held++;
            for (int s = Home(entries[slot].Hash); s != slot; s = (s + 1) & mask)
            {
                if (entries[s].BlockPlusOne == 0)
                {
                    return $"hash {entries[slot].Hash} in slot {slot} is cut off from its home slot by the empty slot {s}";
                }
            }
        }
        return held == Count ? null : $"{held} entries held but the count says {Count}";
    }

    private int Home(ulong hash) => (int)((hash * 0x9E3779B97F4A7C15UL) >> shift);

    private void Place(ulong hash, int block)
    {
        int mask = entries.Length - 1;
        int slot = Home(hash);
        while (entries[slot].BlockPlusOne != 0)
        {
            slot = (slot + 1) & mask;
        }
        entries[slot] = new Entry(hash, block + 1);
    }

    private void Grow()
    {
        Entry[] old = entries;
        entries = new Entry[2 * old.Length];
        shift--;
        foreach (Entry e in old)
        {
            if (e.BlockPlusOne != 0)
            {
                Place(e.Hash, e.BlockPlusOne - 1);
            }
        }
    }

    private readonly record struct Entry(ulong Hash, int BlockPlusOne);
}
