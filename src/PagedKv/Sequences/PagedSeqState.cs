using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Linq;
using ILGPU;
using ILGPU.Runtime;
using PagedKv.Allocation;

namespace PagedKv.Sequences;

/// <summary>What <see cref="PagedSeqState.EnsureCapacity"/> did. The two refusals take nothing.</summary>
public enum EnsureCapacityResult
{
    /// <summary>The sequence can hold the target length (new blocks, if any, are on the device).</summary>
    Done,

    /// <summary>The pool has fewer free blocks than needed.</summary>
    PoolExhausted,

    /// <summary>More blocks would be needed than <see cref="PagedSeqState.MaxBlocksPerSeq"/>.</summary>
    ExceedsMaxBlocks,
}

/// <summary>
/// One sequence's paged-KV state: its logical → physical block table and token count on the
/// host, mirrored into two device views that paged-attention kernels read — the block table
/// (<see cref="MaxBlocksPerSeq"/> × u32) and the context length (1 × u32). Both live in one
/// device allocation (table, then length), so a read-back is one copy.
/// </summary>
/// <remarks>
/// Mirror invariant (<see cref="Validate"/>; asserted after every operation in Debug builds):
/// the device table is the host blocks followed by zeros, and the device length is the length
/// last synced (<see cref="SyncContextLen"/>), 0 after creation and after <see cref="Release"/>.
/// Every operation is all or nothing: on a refusal, a misuse (<see cref="PagedKvException"/>)
/// or a device fault (<see cref="DeviceFaultException"/>) allocator, host and device are as before.
/// Divergences from the original: docs/divergences.md, D9–D13.
/// </remarks>
public sealed class PagedSeqState : IDisposable
{
    private readonly IDeviceCopies copies;
    private readonly MemoryBuffer1D<uint, Stride1D.Dense> device;
    private readonly ArrayView<uint> table;
    private readonly ArrayView<uint> contextLen;
    private readonly List<int> blocks = new();
    private int deviceLen;
    private bool mirrorLost;

    /// <summary>Allocates both device buffers on <paramref name="accelerator"/>, zeroed. Takes no block.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.BlockSizeOutOfRange"/>, <see cref="Fault.MaxBlocksOutOfRange"/>.</exception>
    public PagedSeqState(Accelerator accelerator, int blockSize, int maxBlocksPerSeq, IDeviceCopies? copies = null)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        CheckShape(blockSize, maxBlocksPerSeq);
        BlockSize = blockSize;
        MaxBlocksPerSeq = maxBlocksPerSeq;
        this.copies = copies ?? DirectCopies.Instance;
        device = accelerator.Allocate1D<uint>(maxBlocksPerSeq + 1L);
        device.MemSetToZero();
        table = device.View.SubView(0, maxBlocksPerSeq);
        contextLen = device.View.SubView(maxBlocksPerSeq, 1);
        AssertMirror();
    }

    public int BlockSize { get; }

    public int MaxBlocksPerSeq { get; }

    /// <summary>Physical block ids, logical order.</summary>
    public IReadOnlyList<int> Blocks => blocks;

    /// <summary>Tokens in the sequence (host side; the device sees it after <see cref="SyncContextLen"/>).</summary>
    public int Len { get; private set; }

    /// <summary>Tokens the current blocks can hold.</summary>
    public long TokenCapacity => (long)blocks.Count * BlockSize;

    /// <summary>The device block table, for kernels.</summary>
    public ArrayView<uint> DeviceBlockTable => table;

    /// <summary>The device context length (one u32), for kernels.</summary>
    public ArrayView<uint> DeviceContextLen => contextLen;

    /// <summary>Blocks needed to hold <paramref name="targetLen"/> tokens: ceil(targetLen / block_size).</summary>
    public int BlocksFor(int targetLen) => BlocksForTokens(BlockSize, targetLen);

    /// <summary>Blocks of <paramref name="blockSize"/> tokens needed to hold <paramref name="tokens"/>
    /// tokens: ceil(tokens / blockSize), for any layer that sizes sequences (the prefix cache too).</summary>
    public static int BlocksForTokens(int blockSize, long tokens) => (int)((tokens + blockSize - 1) / blockSize);

    /// <summary>Throws unless a sequence of this shape can exist: block size in [1, <see cref="Limits.MaxBlockSize"/>],
    /// max blocks in [1, <see cref="Limits.MaxBlocksPerSeq"/>].</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.BlockSizeOutOfRange"/>, then <see cref="Fault.MaxBlocksOutOfRange"/>.</exception>
    public static void CheckShape(int blockSize, int maxBlocksPerSeq)
    {
        if (blockSize < 1 || blockSize > Limits.MaxBlockSize)
        {
            throw new PagedKvException(Fault.BlockSizeOutOfRange, blockSize,
                $"block_size={blockSize} is outside [1, {Limits.MaxBlockSize}]");
        }
        if (maxBlocksPerSeq < 1 || maxBlocksPerSeq > Limits.MaxBlocksPerSeq)
        {
            throw new PagedKvException(Fault.MaxBlocksOutOfRange, maxBlocksPerSeq,
                $"max_blocks_per_seq={maxBlocksPerSeq} is outside [1, {Limits.MaxBlocksPerSeq}]");
        }
    }

    /// <summary>Makes the sequence able to hold <paramref name="targetLen"/> tokens: takes the
    /// missing blocks from <paramref name="allocator"/> (all or nothing) and copies only the new
    /// table entries to the device (4 bytes per new block). Idempotent when already big enough.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.LengthOutOfRange"/> when targetLen &lt; 0.</exception>
    /// <exception cref="DeviceFaultException">The copy failed; no block was taken.</exception>
    public EnsureCapacityResult EnsureCapacity(BlockAllocator allocator, int targetLen)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        CheckUsable();
        if (targetLen < 0)
        {
            throw new PagedKvException(Fault.LengthOutOfRange, targetLen, $"target_len={targetLen} is negative");
        }
        int needed = BlocksFor(targetLen);
        if (needed > MaxBlocksPerSeq)
        {
            return EnsureCapacityResult.ExceedsMaxBlocks;
        }
        int missing = needed - blocks.Count;
        if (missing <= 0)
        {
            return EnsureCapacityResult.Done;
        }
        if (!allocator.TryPlanAllocation(missing, out int[]? planned))
        {
            return EnsureCapacityResult.PoolExhausted;
        }
        AppendBlocks(planned, () =>
        {
            bool taken = allocator.TryAllocateN(missing, out int[]? allocated);
            Debug.Assert(taken, "a planned allocation failed");
            Debug.Assert(allocated.AsSpan().SequenceEqual(planned), "allocation differs from its plan");
        });
        return EnsureCapacityResult.Done;
    }

    /// <summary>Appends <paramref name="newBlocks"/> to the table — blocks the caller is about to
    /// take (a planned allocation, cached blocks to share) — all or nothing: copies them to the
    /// device first (4 bytes each), then runs <paramref name="take"/>, which takes them from the
    /// allocator and must not fail, then records them on the host.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.LengthOutOfRange"/> when the table would
    /// pass <see cref="MaxBlocksPerSeq"/>.</exception>
    /// <exception cref="DeviceFaultException">The copy failed; <paramref name="take"/> did not run.</exception>
    public void AppendBlocks(ReadOnlySpan<int> newBlocks, Action take)
    {
        ArgumentNullException.ThrowIfNull(take);
        CheckUsable();
        if ((long)blocks.Count + newBlocks.Length > MaxBlocksPerSeq)
        {
            throw new PagedKvException(Fault.LengthOutOfRange, (long)blocks.Count + newBlocks.Length,
                $"{blocks.Count} + {newBlocks.Length} blocks would pass max_blocks_per_seq={MaxBlocksPerSeq}");
        }
        // Device first: a failed copy leaves its target unchanged, and nothing else has changed yet.
        copies.CopyToDevice(ToU32(newBlocks.ToArray()), table.SubView(blocks.Count, newBlocks.Length));
        take();
        blocks.AddRange(newBlocks);
        AssertMirror();
    }

    /// <summary>Sets the host length. It may not exceed what the blocks hold: a kernel would
    /// otherwise read table entries that name no block of this sequence.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.LengthOutOfRange"/> when len &lt; 0 or &gt; <see cref="TokenCapacity"/>.</exception>
    public void SetLen(int len) => SetLenChecked(len);

    /// <summary><see cref="SetLen"/>(Len + tokens), computed without overflow.</summary>
    public void AdvanceLen(int tokens) => SetLenChecked((long)Len + tokens);

    private void SetLenChecked(long len)
    {
        CheckUsable();
        if (len < 0 || len > TokenCapacity)
        {
            throw new PagedKvException(Fault.LengthOutOfRange, len,
                $"len={len} is outside [0, {TokenCapacity}] (blocks × block_size)");
        }
        Len = (int)len;
        AssertMirror();
    }

    /// <summary>Copies the host length to the device (4 bytes).</summary>
    /// <exception cref="DeviceFaultException">The copy failed; the device length is unchanged.</exception>
    public void SyncContextLen()
    {
        CheckUsable();
        copies.CopyToDevice([(uint)Len], contextLen);
        deviceLen = Len;
        AssertMirror();
    }

    /// <summary>Returns every block to <paramref name="allocator"/> and resets host and device to
    /// a fresh sequence's state: zeroes the used prefix of the device table and the device length
    /// (4 × blocks + 4 bytes; two copies, the first empty when no block is held). Buffers are kept for reuse.
    /// The blocks are freed in table order, as the original does, or last first when
    /// <paramref name="tailFirst"/> (so that under LRU a prefix outlives its suffixes).</summary>
    /// <exception cref="PagedKvException">What <see cref="BlockAllocator.Free"/> would throw (another owner
    /// freed one of these blocks); nothing changed.</exception>
    /// <exception cref="DeviceFaultException">A copy failed; everything is as before.</exception>
    public void Release(BlockAllocator allocator, bool tailFirst = false)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        CheckUsable();
        int[] held = blocks.ToArray();
        int[] order = tailFirst ? [.. held.Reverse()] : held;
        allocator.EnsureCanFree(order);
        copies.CopyToDevice(new uint[held.Length], table.SubView(0, held.Length));
        try
        {
            copies.CopyToDevice([0u], contextLen);
        }
        catch (DeviceFaultException fault)
        {
            Undo(() => copies.CopyToDevice(ToU32(held), table.SubView(0, held.Length)), fault);
            throw;
        }
        allocator.Free(order);
        blocks.Clear();
        Len = 0;
        deviceLen = 0;
        AssertMirror();
    }

    /// <summary>The device buffers read back: the whole table and the length.</summary>
    public (uint[] Table, uint Len) ReadDevice()
    {
        ObjectDisposedException.ThrowIf(device.IsDisposed, this);
        uint[] all = device.GetAsArray1D();
        return (all[..MaxBlocksPerSeq], all[MaxBlocksPerSeq]);
    }

    /// <summary>Checks the mirror invariant against the device (a read-back) and the host bounds;
    /// throws <see cref="InvariantViolationException"/>.</summary>
    public void Validate()
    {
        if (FirstViolation() is (string name, string detail))
        {
            throw new InvariantViolationException(name, detail);
        }
    }

    /// <summary>Frees the device allocation; every later operation throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => device.Dispose();

    private void Undo(Action undo, DeviceFaultException fault)
    {
        try
        {
            undo();
        }
        catch (DeviceFaultException second)
        {
            mirrorLost = true;
            throw new DeviceMirrorLostException("a device copy failed and undoing the operation's earlier copy failed too", new AggregateException(fault, second));
        }
    }

    private void CheckUsable()
    {
        ObjectDisposedException.ThrowIf(device.IsDisposed, this);
        if (mirrorLost)
        {
            throw new InvalidOperationException("this sequence's device mirror was lost; dispose it");
        }
    }

    private static uint[] ToU32(int[] values) => Array.ConvertAll(values, v => (uint)v);

    [Conditional("DEBUG")]
    [ExcludeFromCodeCoverage(Justification = "Debug-only assertion: its failing branch is unreachable on a correct implementation, and Validate() checks the same invariants (tested).")]
    private void AssertMirror()
    {
        var violation = FirstViolation();
        Debug.Assert(violation is null, $"{violation?.Name}: {violation?.Detail}");
    }

    private (string Name, string Detail)? FirstViolation()
    {
        if (blocks.Count > MaxBlocksPerSeq || Len < 0 || Len > TokenCapacity)
        {
            return (SequenceInvariants.HostBounds, $"{blocks.Count} blocks (max {MaxBlocksPerSeq}), len {Len}, capacity {TokenCapacity}");
        }
        var (device, len) = ReadDevice();
        for (int i = 0; i < device.Length; i++)
        {
            uint expected = i < blocks.Count ? (uint)blocks[i] : 0u;
            if (device[i] != expected)
            {
                return (SequenceInvariants.TableMirror, $"device table[{i}] = {device[i]}, host says {expected}");
            }
        }
        if (len != (uint)deviceLen)
        {
            return (SequenceInvariants.LengthMirror, $"device len {len}, last synced {deviceLen}");
        }
        return null;
    }
}

/// <summary>The sequence invariants, each named once (see <see cref="PagedSeqState"/>).</summary>
public static class SequenceInvariants
{
    /// <summary>blocks ≤ max_blocks_per_seq and 0 ≤ len ≤ blocks × block_size.</summary>
    public const string HostBounds = "seq-host-bounds";

    /// <summary>device table = host blocks followed by zeros.</summary>
    public const string TableMirror = "seq-table-mirror";

    /// <summary>device length = the length last synced (0 when fresh or released).</summary>
    public const string LengthMirror = "seq-length-mirror";
}
