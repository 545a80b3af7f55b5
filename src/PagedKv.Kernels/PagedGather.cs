using System;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
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
/// never written, and table entries past ceil(len / block_size) are never read; a launch covers
/// at most <c>maxTokens</c> rows, so a context length beyond the table cannot make it read past it.
/// A row is moved in the widest word that divides its byte length (16, 8, 4 or 2 bytes, else
/// one element): one thread per word, 32-bit index arithmetic.
/// Kept in its own assembly: never mutated, never instrumented for coverage, no asserts
/// (an assert on a CPU-accelerator worker thread would abort the process).
/// </remarks>
[ExcludeFromCodeCoverage]
public sealed class PagedGather
{
    private static readonly ConditionalWeakTable<Accelerator, PagedGather> Loaded = new();
    private readonly Accelerator accelerator;
    private readonly ConcurrentDictionary<Type, Delegate> kernels = new();

    private PagedGather(Accelerator accelerator) => this.accelerator = accelerator;

    /// <summary>The gather for <paramref name="accelerator"/> (kernels compiled once per word type).</summary>
    public static PagedGather For(Accelerator accelerator) => Loaded.GetValue(accelerator, a => new PagedGather(a));

    /// <summary>16 bytes: the widest word a thread moves.</summary>
    public struct Word16
    {
        public ulong Low;
        public ulong High;
    }

    /// <summary>One thread per word of the first <c>maxTokens</c> rows.</summary>
    public static void Kernel<W>(
        Index1D index,
        ArrayView<W> pool,
        ArrayView<uint> blockTable,
        ArrayView<uint> contextLen,
        ArrayView<W> output,
        int blockSize,
        int rowWords)
        where W : unmanaged
    {
        int element = index;
        int token = element / rowWords;
        if (token >= (int)contextLen[0])
        {
            return;
        }
        int word = element - token * rowWords;
        int logicalBlock = token / blockSize;
        long row = (long)blockTable[logicalBlock] * blockSize + (token - logicalBlock * blockSize);
        output[element] = pool[row * rowWords + word];
    }

    /// <summary>Enqueues the gather of up to <paramref name="maxTokens"/> rows (the sequence's table
    /// capacity in tokens); only rows below the device context length are written.</summary>
    public unsafe void Launch<T>(ArrayView<T> pool, ArrayView<uint> blockTable, ArrayView<uint> contextLen, ArrayView<T> output, int blockSize, int headDim, int maxTokens)
        where T : unmanaged
    {
        long rowBytes = (long)headDim * sizeof(T);
        if (rowBytes % 16 == 0)
        {
            Run(pool.Cast<Word16>(), blockTable, contextLen, output.Cast<Word16>(), blockSize, (int)(rowBytes / 16), maxTokens);
        }
        else if (rowBytes % 8 == 0)
        {
            Run(pool.Cast<ulong>(), blockTable, contextLen, output.Cast<ulong>(), blockSize, (int)(rowBytes / 8), maxTokens);
        }
        else if (rowBytes % 4 == 0)
        {
            Run(pool.Cast<uint>(), blockTable, contextLen, output.Cast<uint>(), blockSize, (int)(rowBytes / 4), maxTokens);
        }
        else if (rowBytes % 2 == 0)
        {
            Run(pool.Cast<ushort>(), blockTable, contextLen, output.Cast<ushort>(), blockSize, (int)(rowBytes / 2), maxTokens);
        }
        else
        {
            Run(pool, blockTable, contextLen, output, blockSize, headDim, maxTokens);
        }
    }

    private void Run<W>(ArrayView<W> pool, ArrayView<uint> blockTable, ArrayView<uint> contextLen, ArrayView<W> output, int blockSize, int rowWords, int maxTokens)
        where W : unmanaged
    {
        var kernel = (Action<Index1D, ArrayView<W>, ArrayView<uint>, ArrayView<uint>, ArrayView<W>, int, int>)kernels.GetOrAdd(typeof(W), _ =>
            accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<W>, ArrayView<uint>, ArrayView<uint>, ArrayView<W>, int, int>(Kernel));
        long threads = (long)maxTokens * rowWords;
        if (threads > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(maxTokens), $"{threads} words exceed one launch");
        }
        kernel(new Index1D((int)threads), pool, blockTable, contextLen, output, blockSize, rowWords);
    }

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
