using System;

namespace PagedKv;

/// <summary>The two classes of misuse. Exhaustion is not misuse: it is reported by a
/// <c>Try…</c> method returning false, never by an exception.</summary>
public enum ErrorKind
{
    /// <summary>A value no state could accept: an id ≥ capacity, a negative count, block size 0.</summary>
    InvalidArgument,

    /// <summary>A value the current state forbids: double free, acquire/register on a free block,
    /// a reference count past <see cref="Limits.MaxRefCount"/>.</summary>
    InvalidState,
}

/// <summary>Every misuse the library rejects. Names match the F# spec's <c>Fault</c> cases.</summary>
public enum Fault
{
    /// <summary>Capacity negative or above <see cref="Limits.MaxCapacity"/>.</summary>
    CapacityOutOfRange,

    /// <summary>A negative block count (allocate_n).</summary>
    CountOutOfRange,

    /// <summary>A block id outside [0, capacity).</summary>
    BlockOutOfRange,

    /// <summary>A block size outside [1, <see cref="Limits.MaxBlockSize"/>].</summary>
    BlockSizeOutOfRange,

    /// <summary>free of a block whose reference count is already 0 (or a batch naming a block
    /// more often than it has references).</summary>
    FreeOfFreeBlock,

    /// <summary>acquire of a block whose reference count is 0.</summary>
    AcquireOfFreeBlock,

    /// <summary>register_block_hash on a block whose reference count is 0.</summary>
    RegisterOnFreeBlock,

    /// <summary>An acquire that would raise a reference count past <see cref="Limits.MaxRefCount"/>.</summary>
    RefCountOverflow,

    /// <summary>A sequence limit outside [1, <see cref="Limits.MaxBlocksPerSeq"/>].</summary>
    MaxBlocksOutOfRange,

    /// <summary>A sequence length (target length or len) negative or beyond what the sequence may hold.</summary>
    LengthOutOfRange,

    /// <summary>A sequence id that names no sequence (replay protocol, test harness).</summary>
    UnknownSequence,

    /// <summary>A sequence id already in use (replay protocol, test harness).</summary>
    SequenceExists,

    /// <summary>A block of a prefix-cache request was freed or re-allocated by another user of the
    /// allocator: the request no longer owns its content.</summary>
    RequestBlockLost,
}

/// <summary>Maps a <see cref="Fault"/> to its <see cref="ErrorKind"/>: the one place that says which is which.</summary>
public static class Faults
{
    public static ErrorKind KindOf(Fault fault) => fault switch
    {
        Fault.FreeOfFreeBlock or Fault.AcquireOfFreeBlock or Fault.RegisterOnFreeBlock
            or Fault.RefCountOverflow or Fault.SequenceExists or Fault.RequestBlockLost => ErrorKind.InvalidState,
        _ => ErrorKind.InvalidArgument,
    };
}

/// <summary>
/// Thrown for every misuse. The operation that throws has changed nothing: all validation
/// happens before the first write (batches included).
/// </summary>
public sealed class PagedKvException : Exception
{
    public PagedKvException(Fault fault, long value, string message)
        : base(message)
    {
        Fault = fault;
        Value = value;
    }

    /// <summary>What was wrong.</summary>
    public Fault Fault { get; }

    /// <summary>The offending value: the block id, count, capacity, block size or length.</summary>
    public long Value { get; }

    /// <summary>Whether the value or the state was at fault.</summary>
    public ErrorKind Kind => Faults.KindOf(Fault);
}

/// <summary>Thrown by <c>Validate()</c> when an invariant does not hold: always a bug in this library.</summary>
public sealed class InvariantViolationException : Exception
{
    public InvariantViolationException(string invariant, string detail)
        : base($"invariant {invariant} violated: {detail}")
    {
        Invariant = invariant;
    }

    /// <summary>The violated invariant's name (see <c>AllocatorInvariants</c>).</summary>
    public string Invariant { get; }
}
