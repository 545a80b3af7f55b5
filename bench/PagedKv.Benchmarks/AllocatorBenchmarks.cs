using System;
using BenchmarkDotNet.Attributes;
using PagedKv.Allocation;

namespace PagedKv.Benchmarks;

/// <summary>The original's free-list policy under prefix caching. Each cycle allocates a block,
/// registers a fresh hash on it and frees it (soft-free, hashed, on top of the stack): soon every
/// free block is hashed and each allocate scans the whole free list before taking the top
/// (O(free)). Baseline: the same cycle without hashes (the top is taken at once). A later O(1)
/// policy is measured against both.</summary>
[MemoryDiagnoser(false)]
public class AllocatorBenchmarks
{
    private BlockAllocator? plain;
    private BlockAllocator? cached;
    private readonly int[] one = new int[1];
    private ulong nextHash;

    [Params(1024, 16384)]
    public int Capacity { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        plain = new BlockAllocator(Capacity);
        cached = new BlockAllocator(Capacity);
        // Start in the steady state: every free block soft-free with a hash.
        cached.TryAllocateN(Capacity, out int[]? all);
        foreach (int block in all!)
        {
            cached.RegisterBlockHash(block, ++nextHash);
        }
        cached.Free(all);
    }

    [Benchmark(Baseline = true)]
    public int AllocateFreeNoHashes() => Cycle(plain!, register: false);

    [Benchmark]
    public int AllocateRegisterFreeAllSoftCached() => Cycle(cached!, register: true);

    private int Cycle(BlockAllocator allocator, bool register)
    {
        allocator.TryAllocate(out int block);
        if (register)
        {
            allocator.RegisterBlockHash(block, ++nextHash);
        }
        one[0] = block;
        allocator.Free(one);
        return block;
    }
}
