using System;
using System.IO;
using System.Text;

namespace PagedKv.Protocol;

/// <summary>The replay protocol's named bounds.</summary>
public static class ProtocolLimits
{
    /// <summary>The longest request line `replay` reads (2^26 characters; every valid request is
    /// ASCII, so characters are bytes): the largest request a valid history holds, an
    /// <c>acquire_many</c> to the ref-count limit or a prompt of a few million tokens, fits many
    /// times over, and the session's memory stays bounded (a longer line is skipped to its
    /// newline, never held).</summary>
    public const int MaxRequestLineChars = 1 << 26;
}

/// <summary>Lines of a text stream, each at most <c>limit</c> characters: a longer one is read to
/// its newline without being held and returned as overlong, with its length.</summary>
public sealed class BoundedLineReader(TextReader input, int limit)
{
    private readonly char[] buffer = new char[65536];
    private int start;
    private int end;
    // The last line ended at a '\r': a '\n' right after it belongs to that line end.
    private bool afterCarriageReturn;

    /// <summary>The next line, ended as <see cref="TextReader.ReadLine"/> ends one ("\n", "\r" or
    /// "\r\n"); null text when it was past the limit, with <paramref name="length"/> its length.
    /// False at the end of input.</summary>
    public bool TryRead(out string? line, out long length)
    {
        var held = new StringBuilder();
        length = 0;
        bool any = false;
        while (true)
        {
            if (start == end && !Fill())
            {
                line = length > limit ? null : held.ToString();
                return any;
            }
            if (afterCarriageReturn)
            {
                afterCarriageReturn = false;
                if (buffer[start] == '\n')
                {
                    start++;
                    continue;
                }
            }
            any = true;
            int found = buffer.AsSpan(start, end - start).IndexOfAny('\n', '\r');
            int stop = found < 0 ? -1 : start + found;
            int take = (stop < 0 ? end : stop) - start;
            if (length + take <= limit)
            {
                held.Append(buffer, start, take);
            }
            else
            {
                held.Clear(); // past the limit: count the rest, hold nothing
            }
            length += take;
            if (stop < 0)
            {
                start = end;
                continue;
            }
            afterCarriageReturn = buffer[stop] == '\r';
            start = stop + 1;
            line = length > limit ? null : held.ToString();
            return true;
        }
    }

    private bool Fill()
    {
        start = 0;
        end = Math.Max(0, input.Read(buffer, 0, buffer.Length));
        return end > 0;
    }
}

/// <summary>UTF-8 text over a byte stream whose Read returns what one read of the stream gave.
/// (A StreamReader may wait for more bytes when a read fills its buffer exactly, holding back
/// complete lines a pipelined client waits to have answered.)</summary>
public sealed class StreamTextReader(Stream stream) : TextReader
{
    private readonly Decoder decoder = new UTF8Encoding(false).GetDecoder();
    private byte[] bytes = new byte[65536];

    public override int Read(char[] buffer, int index, int count)
    {
        if (count == 0)
        {
            return 0;
        }
        if (bytes.Length > count)
        {
            bytes = new byte[count]; // n bytes decode to at most n characters
        }
        while (true)
        {
            int n = stream.Read(bytes, 0, Math.Min(count, bytes.Length));
            int chars = decoder.GetChars(bytes, 0, n, buffer, index, flush: n == 0);
            if (chars > 0 || n == 0)
            {
                return chars;
            }
        }
    }
}
