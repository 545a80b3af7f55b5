using System;
using BenchmarkDotNet.Attributes;

namespace PagedKv.Benchmarks;

/// <summary>The machine's floor under the cached workloads: one dependent load from a random
/// entry of a 16-byte-entry array as large as the allocator's hash table at capacity N (2N
/// slots once N hashes are held), i.e. a pointer chase along a random order of all entries
/// linked into one cycle, one step per call. A hash hit cannot cost less than one such step
/// (hash → table entry) plus the steps that depend on its result (the block's ref count, its
/// place in the free order); docs/performance.md compares.</summary>
public class MemoryFloorBenchmarks
{
    private Entry[] entries = [];
    private long cursor;

    [Params(1 << 10, 1 << 14, 1 << 20)]
    public int N { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        int slots = 2 * N;
        entries = new Entry[slots];
        int[] order = new int[slots];
        for (int i = 0; i < slots; i++)
        {
            order[i] = i;
        }
        new Random(12345).Shuffle(order);
        for (int i = 0; i < slots; i++)
        {
            entries[order[i]] = new Entry { Next = order[(i + 1) % slots], Payload = i };
        }
        cursor = 0;
    }

    [Benchmark]
    public long DependentLoad() => cursor = entries[cursor].Next;

    private struct Entry
    {
        public long Next;
        public long Payload;
    }
}
