using System;
using System.Diagnostics.CodeAnalysis;
using ILGPU;
using ILGPU.Runtime;

namespace PagedKv.Kernels;

/// <summary>
/// Paged gather: reads one sequence's K (or V) rows from a block pool through its device block
/// table into a contiguous buffer — the memory access pattern of paged attention.
/// </summary>
/// <remarks>
/// Pool layout: blocks × block_size × head_dim, row-major. Output row t (t &lt; context length)
/// is pool[table[t / block_size], t % block_size, :]. Rows at and past the context length are
/// never written, and table entries past ceil(len / block_size) are never read.
/// Kept in its own assembly: never mutated, never instrumented for coverage, no asserts
/// (an assert on a CPU-accelerator worker thread would abort the process).
/// </remarks>
[ExcludeFromCodeCoverage]
public static class PagedGather
{
    /// <summary>One thread per output element of the longest possible sequence.</summary>
    public static void Kernel<T>(
        Index1D index,
        ArrayView<T> pool,
        ArrayView<uint> blockTable,
        ArrayView<uint> contextLen,
        ArrayView<T> output,
        int blockSize,
        int headDim)
        where T : unmanaged
    {
        long len = contextLen[0];
        long element = index;
        long token = element / headDim;
        if (token >= len)
        {
            return;
        }
        long dim = element - token * headDim;
        long block = blockTable[token / blockSize];
        long row = block * blockSize + token % blockSize;
        output[element] = pool[row * headDim + dim];
    }

    /// <summary>Compiles the kernel for <paramref name="accelerator"/> (once per accelerator and type).</summary>
    public static Action<Index1D, ArrayView<T>, ArrayView<uint>, ArrayView<uint>, ArrayView<T>, int, int> Load<T>(Accelerator accelerator)
        where T : unmanaged =>
        accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<uint>, ArrayView<uint>, ArrayView<T>, int, int>(Kernel);

    /// <summary>The same gather on the host: the reference the kernel is checked against.</summary>
    public static void Host<T>(ReadOnlySpan<T> pool, ReadOnlySpan<uint> blockTable, int len, Span<T> output, int blockSize, int headDim)
    {
        for (int token = 0; token < len; token++)
        {
            long row = (long)blockTable[token / blockSize] * blockSize + token % blockSize;
            pool.Slice((int)(row * headDim), headDim).CopyTo(output.Slice(token * headDim, headDim));
        }
    }
}
