using System;
using BenchmarkDotNet.Attributes;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using PagedKv.Kernels;

namespace PagedKv.Benchmarks;

/// <summary>The paged gather of one sequence spanning the whole pool through a shuffled block
/// table, against a device-to-device copy of the same bytes (the baseline). Each operation is a
/// launch plus a synchronize. Runs on CUDA when present, else on the CPU accelerator (where the
/// pool is small: it is an emulator).</summary>
[MemoryDiagnoser(false)]
public class GatherBenchmarks
{
    private Context? context;
    private Accelerator? accelerator;
    private MemoryBuffer1D<float, Stride1D.Dense>? pool;
    private MemoryBuffer1D<float, Stride1D.Dense>? output;
    private MemoryBuffer1D<uint, Stride1D.Dense>? table;
    private MemoryBuffer1D<uint, Stride1D.Dense>? contextLen;
    private PagedGather? gather;
    private int tokens;

    [Params(16)]
    public int BlockSize { get; set; }

    [Params(128)]
    public int HeadDim { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        context = Context.Create(b => b.DefaultCPU().Cuda());
        bool cuda = context.GetCudaDevices().Count > 0;
        accelerator = cuda ? context.CreateCudaAccelerator(0) : context.CreateCPUAccelerator(0);
        long poolBytes = cuda ? 1L << 30 : 4L << 20;
        int blocks = (int)(poolBytes / (BlockSize * HeadDim * sizeof(float)));
        tokens = blocks * BlockSize;
        var ids = new uint[blocks];
        for (uint i = 0; i < blocks; i++)
        {
            ids[i] = i;
        }
        new Random(1234).Shuffle(ids);
        pool = accelerator.Allocate1D<float>((long)tokens * HeadDim);
        output = accelerator.Allocate1D<float>((long)tokens * HeadDim);
        pool.MemSetToZero();
        table = accelerator.Allocate1D(ids);
        contextLen = accelerator.Allocate1D(new[] { (uint)tokens });
        gather = PagedGather.For(accelerator);
        Console.WriteLine($"// accelerator: {accelerator.Name}; pool {poolBytes >> 20} MiB, {blocks} blocks");
    }

    [Benchmark(Baseline = true)]
    public void DeviceCopy()
    {
        pool!.View.CopyTo(output!.View);
        accelerator!.Synchronize();
    }

    [Benchmark]
    public void PagedGatherKernel()
    {
        gather!.Launch<float>(pool!.View, table!.View, contextLen!.View, output!.View, BlockSize, HeadDim, tokens);
        accelerator!.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        pool?.Dispose();
        output?.Dispose();
        table?.Dispose();
        contextLen?.Dispose();
        accelerator?.Dispose();
        context?.Dispose();
    }
}
