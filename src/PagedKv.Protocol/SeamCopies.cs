using System;
using ILGPU;
using PagedKv.Sequences;

namespace PagedKv.Protocol;

/// <summary>Makes chosen device copies fail: after <see cref="Arm"/>(k), the k-th copy (0-based)
/// through any <see cref="SeamCopies"/> sharing this arm throws before copying. One arm serves a
/// whole session, so "the k-th copy of the next request" is counted across its sequences.</summary>
public sealed class FaultArm
{
    private int countdown = -1;

    /// <summary>Faults injected so far.</summary>
    public int Injected { get; private set; }

    public void Arm(int copy) => countdown = copy;

    public void Disarm() => countdown = -1;

    /// <summary>Called before each copy: true when this copy must fail.</summary>
    internal bool Fire()
    {
        if (countdown < 0)
        {
            return false;
        }
        if (countdown-- > 0)
        {
            return false;
        }
        Injected++;
        return true;
    }
}

/// <summary>
/// The device-copy seam of one sequence, as a verifier sees it: every copy passes through here on
/// its way to <see cref="DirectCopies"/>, which counts the bytes each completed copy was asked to
/// move and can be made to fail (<see cref="FaultArm"/>). Counting here, not in
/// <see cref="PagedSeqState"/>, checks the sequence's claim of what it writes where the sequence
/// cannot steer the count.
/// </summary>
public sealed class SeamCopies(FaultArm? arm = null) : IDeviceCopies
{
    /// <summary>Bytes moved by completed copies.</summary>
    public long Bytes { get; private set; }

    public void CopyToDevice(ReadOnlySpan<uint> source, ArrayView<uint> target)
    {
        if (arm?.Fire() == true)
        {
            throw new DeviceFaultException("injected device fault");
        }
        DirectCopies.Instance.CopyToDevice(source, target);
        Bytes += sizeof(uint) * (long)source.Length;
    }

    /// <summary>Runs <paramref name="operation"/>; if it fails with a device fault, its copies are
    /// not counted (an operation that failed counts nothing: its earlier copies were undone).</summary>
    public T Attribute<T>(Func<T> operation)
    {
        long before = Bytes;
        try
        {
            return operation();
        }
        catch (Exception e) when (e is DeviceFaultException or DeviceMirrorLostException)
        {
            Bytes = before;
            throw;
        }
    }
}
