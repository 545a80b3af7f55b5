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

    /// <summary>The next line (without its newline, a trailing '\r' dropped); null text when it
    /// was past the limit, with <paramref name="length"/> its length. False at the end of input.</summary>
    public bool TryRead(out string? line, out long length)
    {
        var held = new StringBuilder();
        length = 0;
        bool any = false;
        while (true)
        {
            if (start == end)
            {
                start = 0;
                end = Math.Max(0, input.Read(buffer, 0, buffer.Length));
                if (end == 0)
                {
                    line = length > limit ? null : Trimmed(held);
                    return any;
                }
            }
            any = true;
            int newline = Array.IndexOf(buffer, '\n', start, end - start);
            int stop = newline < 0 ? end : newline;
            int take = stop - start;
            if (length + take <= limit)
            {
                held.Append(buffer, start, take);
            }
            else
            {
                held.Clear(); // past the limit: count the rest, hold nothing
            }
            length += take;
            start = newline < 0 ? end : newline + 1;
            if (newline >= 0)
            {
                line = length > limit ? null : Trimmed(held);
                return true;
            }
        }
    }

    private static string Trimmed(StringBuilder held) =>
        held.Length > 0 && held[^1] == '\r' ? held.ToString(0, held.Length - 1) : held.ToString();
}
