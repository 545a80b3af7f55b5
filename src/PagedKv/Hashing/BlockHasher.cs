using System;
using System.Buffers.Binary;
using System.Diagnostics;

namespace PagedKv.Hashing;

/// <summary>
/// Content hashes of KV blocks, bit-identical to the original's <c>block_hash</c> /
/// <c>block_hash_chain</c> (Rust std <c>DefaultHasher</c> = SipHash-1-3, keys 0 and 0).
/// </summary>
/// <remarks>
/// Byte stream hashed: the parent hash as 8 little-endian bytes, then each token as 4
/// little-endian bytes; no length prefix. (SipHash's own finalisation mixes in the total
/// byte count, as in every SipHash.)
/// </remarks>
public static class BlockHasher
{
    /// <summary>Hash of one block chained from its parent (0 for the first block).</summary>
    public static ulong BlockHash(ulong parent, ReadOnlySpan<uint> tokens)
    {
        int length = 8 + 4 * tokens.Length;
        byte[] stream = new byte[length];
        BinaryPrimitives.WriteUInt64LittleEndian(stream, parent);
        for (int i = 0; i < tokens.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(stream.AsSpan(8 + 4 * i), tokens[i]);
        }
        return SipHash13(stream);
    }

    /// <summary>
    /// Chained hashes of the full <paramref name="blockSize"/>-token blocks of
    /// <paramref name="tokens"/>; a trailing partial block is dropped (its content is not final).
    /// </summary>
    /// <exception cref="PagedKvException"><see cref="Fault.BlockSizeOutOfRange"/> when
    /// <paramref name="blockSize"/> is not in [1, <see cref="Limits.MaxBlockSize"/>]
    /// (the original divides by zero).</exception>
    public static ulong[] BlockHashChain(ReadOnlySpan<uint> tokens, int blockSize)
    {
        if (blockSize < 1 || blockSize > Limits.MaxBlockSize)
        {
            throw new PagedKvException(Fault.BlockSizeOutOfRange, blockSize,
                $"block_size={blockSize} is outside [1, {Limits.MaxBlockSize}]");
        }
        int count = tokens.Length / blockSize;
        var hashes = new ulong[count];
        ulong parent = 0;
        for (int i = 0; i < count; i++)
        {
            parent = BlockHash(parent, tokens.Slice(i * blockSize, blockSize));
            hashes[i] = parent;
        }
        Debug.Assert(hashes.Length * blockSize <= tokens.Length);
        Debug.Assert(tokens.Length - hashes.Length * blockSize < blockSize);
        return hashes;
    }

    /// <summary>SipHash-1-3 with keys k0 = k1 = 0 over <paramref name="message"/>.</summary>
    public static ulong SipHash13(ReadOnlySpan<byte> message)
    {
        ulong v0 = 0x736f6d6570736575UL;
        ulong v1 = 0x646f72616e646f6dUL;
        ulong v2 = 0x6c7967656e657261UL;
        ulong v3 = 0x7465646279746573UL;

        int whole = message.Length & ~7;
        for (int i = 0; i < whole; i += 8)
        {
            ulong m = BinaryPrimitives.ReadUInt64LittleEndian(message.Slice(i, 8));
            v3 ^= m;
            SipRound(ref v0, ref v1, ref v2, ref v3);
            v0 ^= m;
        }

        // Last word: the 0–7 remaining bytes, zero padding (stackalloc is zeroed), and the
        // length's low byte on top.
        Span<byte> tail = stackalloc byte[8];
        message[whole..].CopyTo(tail);
        tail[7] = (byte)message.Length;
        ulong last = BinaryPrimitives.ReadUInt64LittleEndian(tail);
        v3 ^= last;
        SipRound(ref v0, ref v1, ref v2, ref v3);
        v0 ^= last;

        v2 ^= 0xff;
        SipRound(ref v0, ref v1, ref v2, ref v3);
        SipRound(ref v0, ref v1, ref v2, ref v3);
        SipRound(ref v0, ref v1, ref v2, ref v3);
        return v0 ^ v1 ^ v2 ^ v3;
    }

    private static void SipRound(ref ulong v0, ref ulong v1, ref ulong v2, ref ulong v3)
    {
        v0 += v1; v1 = ulong.RotateLeft(v1, 13); v1 ^= v0; v0 = ulong.RotateLeft(v0, 32);
        v2 += v3; v3 = ulong.RotateLeft(v3, 16); v3 ^= v2;
        v0 += v3; v3 = ulong.RotateLeft(v3, 21); v3 ^= v0;
        v2 += v1; v1 = ulong.RotateLeft(v1, 17); v1 ^= v2; v2 = ulong.RotateLeft(v2, 32);
    }
}
