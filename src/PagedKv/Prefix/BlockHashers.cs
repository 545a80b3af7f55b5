using System;
using PagedKv.Hashing;

namespace PagedKv.Prefix;

/// <summary>The hash of one full block of tokens, chained from its parent's: the seam through
/// which a test makes hashes collide.</summary>
public interface IBlockHasher
{
    ulong Hash(ulong parent, ReadOnlySpan<uint> tokens);
}

/// <summary>The original's <c>block_hash</c> (SipHash-1-3): <see cref="BlockHasher.BlockHash"/>.</summary>
public sealed class SipBlockHasher : IBlockHasher
{
    public static readonly SipBlockHasher Instance = new();

    private SipBlockHasher()
    {
    }

    public ulong Hash(ulong parent, ReadOnlySpan<uint> tokens) => BlockHasher.BlockHash(parent, tokens);
}

/// <summary>The original's block hash reduced to <see cref="Distinct"/> values (the hash modulo
/// that): every block maps to one of a handful of hashes, so prefix lookups meet collisions all the
/// time. For verifying that a hash hit is never trusted without checking the content.</summary>
public sealed class CollidingHasher : IBlockHasher
{
    /// <exception cref="ArgumentOutOfRangeException">distinct &lt; 1.</exception>
    public CollidingHasher(int distinct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(distinct, 1);
        Distinct = distinct;
    }

    public int Distinct { get; }

    public ulong Hash(ulong parent, ReadOnlySpan<uint> tokens) => BlockHasher.BlockHash(parent, tokens) % (ulong)Distinct;
}
