using System;
using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using PagedKv.Protocol;
using PagedKv.Kernels;

namespace PagedKv.Cli;

/// <summary>Paged-gather bandwidth on one accelerator: a sequence spanning the whole pool through
/// a shuffled block table, against a plain device-to-device copy of the same bytes in the same
/// run. Checks the gathered output against the host gather afterwards.</summary>
internal static class BenchGatherCommand
{
    public static int Run(string accelerator, int poolMib, int blockSize, int headDim, string dtype, int iterations)
    {
        if (accelerator is not ("cpu" or "cuda"))
        {
            return Usage($"--accelerator must be cpu or cuda, not {accelerator}");
        }
        var acc = Accelerators.ByName(accelerator);
        if (acc is null)
        {
            Console.Error.WriteLine($"no {accelerator} accelerator on this machine");
            return 2;
        }
        return dtype switch
        {
            "f32" => Bench<float>(acc, poolMib, blockSize, headDim, iterations, i => i),
            "f16" => Bench<System.Half>(acc, poolMib, blockSize, headDim, iterations, i => (System.Half)i),
            _ => Usage($"--dtype must be f32 or f16, not {dtype}"),
        };
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine(message);
        return 2;
    }

    private static unsafe int Bench<T>(Accelerator acc, int poolMib, int blockSize, int headDim, int iterations, Func<float, T> of)
        where T : unmanaged, IEquatable<T>
    {
        long blockBytes = (long)blockSize * headDim * sizeof(T);
        long blocks = poolMib * (1L << 20) / blockBytes;
        long elements = blocks * blockSize * headDim;
        if (blocks < 1 || blocks > Limits.MaxBlocksPerSeq || elements > int.MaxValue || iterations < 1)
        {
            return Usage($"pool of {blocks} blocks / {elements} elements is outside what one launch covers");
        }
        Console.WriteLine($"device: {acc.Name} ({acc.AcceleratorType}); pool {blocks * blockBytes / (1 << 20)} MiB = {blocks} blocks × {blockSize} tokens × {headDim} × {typeof(T).Name}");

        var rng = new Random(1234);
        var pool = new T[elements];
        for (long i = 0; i < elements; i++)
        {
            pool[i] = of(rng.Next(-2048, 2048));
        }
        var table = new uint[blocks];
        for (uint i = 0; i < blocks; i++)
        {
            table[i] = i;
        }
        rng.Shuffle(table);
        uint len = (uint)(blocks * blockSize);

        using var devPool = acc.Allocate1D(pool);
        using var devTable = acc.Allocate1D(table);
        using var devLen = acc.Allocate1D(new[] { len });
        using var devOut = acc.Allocate1D<T>(elements);
        var gather = PagedGather.For(acc);
        void Gather() => gather.Launch<T>(devPool.View, devTable.View, devLen.View, devOut.View, blockSize, headDim, (int)len);
        void Copy() => devPool.View.CopyTo(devOut.View);

        double gatherSeconds = Time(acc, Gather, iterations);
        var gathered = devOut.GetAsArray1D();
        double copySeconds = Time(acc, Copy, iterations);

        var expected = new T[elements];
        PagedGather.Host<T>(pool, table, (int)len, expected, blockSize, headDim);
        bool correct = expected.AsSpan().SequenceEqual(gathered);

        long bytes = elements * sizeof(T);
        double gatherGbs = 2.0 * bytes / gatherSeconds / 1e9;
        double copyGbs = 2.0 * bytes / copySeconds / 1e9;
        Console.WriteLine($"gather: {gatherSeconds * 1e3:F3} ms/launch, {gatherGbs:F1} GB/s (read + write)");
        Console.WriteLine($"copy:   {copySeconds * 1e3:F3} ms/launch, {copyGbs:F1} GB/s (read + write)");
        Console.WriteLine($"gather / copy bandwidth: {gatherGbs / copyGbs:F3}");
        Console.WriteLine($"gather output equals host gather: {correct}");
        return correct ? 0 : 1;
    }

    /// <summary>Median seconds per call over <paramref name="iterations"/> synchronized calls, after 3 warm-ups.</summary>
    private static double Time(Accelerator acc, Action action, int iterations)
    {
        for (int i = 0; i < 3; i++)
        {
            action();
        }
        acc.Synchronize();
        var samples = new double[iterations];
        for (int i = 0; i < iterations; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            acc.Synchronize();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        Array.Sort(samples);
        return samples[iterations / 2];
    }
}
