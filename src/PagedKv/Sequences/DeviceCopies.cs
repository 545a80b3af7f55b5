using System;
using ILGPU;
using ILGPU.Runtime;

namespace PagedKv.Sequences;

/// <summary>
/// The one way sequence state reaches a device: every host → device copy goes through this
/// seam, so a test can make any copy fail (<see cref="DeviceFaultException"/>).
/// </summary>
/// <remarks>Contract: a copy either completes or throws <see cref="DeviceFaultException"/> having
/// left its target unchanged (a single ILGPU copy call). An operation that made several copies
/// undoes the earlier ones itself.</remarks>
public interface IDeviceCopies
{
    void CopyToDevice(ReadOnlySpan<uint> source, ArrayView<uint> target);
}

/// <summary>Plain ILGPU copies; any accelerator error becomes a <see cref="DeviceFaultException"/>.</summary>
public sealed class DirectCopies : IDeviceCopies
{
    public static readonly DirectCopies Instance = new();

    private DirectCopies()
    {
    }

    public void CopyToDevice(ReadOnlySpan<uint> source, ArrayView<uint> target)
    {
        if (source.Length != target.Length)
        {
            throw new ArgumentException($"copy of {source.Length} values into a view of {target.Length}");
        }
        try
        {
            target.CopyFromCPU(source);
        }
        catch (Exception e) when (e is AcceleratorException or InvalidOperationException or OutOfMemoryException)
        {
            throw new DeviceFaultException($"device copy of {source.Length} u32 failed: {e.Message}", e);
        }
    }
}

/// <summary>A device copy failed. The operation that was running has been undone: allocator,
/// host state and device state are as they were before it.</summary>
public sealed class DeviceFaultException : Exception
{
    public DeviceFaultException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>A device copy failed and so did undoing an earlier copy of the same operation: the
/// device mirror of this sequence is unknown. The sequence refuses every further operation; dispose it.</summary>
public sealed class DeviceMirrorLostException : Exception
{
    public DeviceMirrorLostException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
