namespace PagedKv;

/// <summary>
/// Every explicit limit of the system, named once. The F# spec (spec/PagedKv.Spec/Allocator.fs)
/// uses the same names and values; a test checks that they agree.
/// </summary>
public static class Limits
{
    /// <summary>Largest block count an allocator may be created with (2^24 blocks).
    /// The original takes any u32; we bound it so that a malformed request cannot ask for
    /// gigabytes of bookkeeping.</summary>
    public const int MaxCapacity = 1 << 24;

    /// <summary>Largest reference count of one block: the original's ref count is a u16.</summary>
    public const int MaxRefCount = ushort.MaxValue;

    /// <summary>Largest block table one sequence may have.</summary>
    public const int MaxBlocksPerSeq = 1 << 20;

    /// <summary>Largest sequence id in the replay protocol and the test harness (ids are 0 … this).</summary>
    public const int MaxSequenceId = 1 << 16;

    /// <summary>Largest number of tokens in one block.</summary>
    public const int MaxBlockSize = 1 << 16;
}
