using BenchmarkDotNet.Attributes;
using PagedKv.Allocation;
using PagedKv.Cli.Bench;

namespace PagedKv.Benchmarks;

/// <summary>The `bench` command's workloads (<see cref="AllocatorWorkload"/>, the same file) under
/// BenchmarkDotNet: one loop iteration per benchmark call, both policies, N from 2^10 to 2^20, so
/// that cost(2^20) / cost(2^10) and the allocated bytes per operation (MemoryDiagnoser) are read
/// off one run.</summary>
[MemoryDiagnoser]
public class AllocatorBenchmarks
{
    private AllocatorWorkload? workload;

    [Params("alloc_free_nohash", "alloc_cached", "hit_deep")]
    public string Workload { get; set; } = "";

    [Params(1 << 10, 1 << 14, 1 << 20)]
    public int N { get; set; }

    [Params(Policy.LifoPreferUnhashed, Policy.Lru)]
    public Policy Policy { get; set; }

    [GlobalSetup]
    public void Setup() => workload = AllocatorWorkload.Create(Workload, N, Policy);

    [Benchmark]
    public long Iteration() => workload!.Run(1);
}
