using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text.Json;

namespace PagedKv.Protocol;

/// <summary>A request line is malformed: bad JSON, unknown op, missing, mistyped, duplicated or unknown field.</summary>
public sealed class BadRequestException(string message) : Exception(message);

/// <summary>The JSON type a field of a request must have.</summary>
public enum FieldType
{
    /// <summary>A JSON integer literal (no fraction, no exponent; <c>-0</c> is 0), of any width.</summary>
    Integer,

    /// <summary>An array of integer literals.</summary>
    Integers,

    /// <summary>An array of u32 tokens (integer literals in [0, 2^32)).</summary>
    Tokens,

    /// <summary>A u64: a decimal string of digits, a "0x…"/"0X…" hex string of hex digits, or an integer literal in [0, 2^64).</summary>
    Hash,

    /// <summary>Optional: "lifo" or "lru" (a free-order policy).</summary>
    OptionalPolicy,

    /// <summary>Optional: an integer literal.</summary>
    OptionalInteger,
}

/// <summary>One field an op takes.</summary>
public readonly record struct FieldSpec(string Name, FieldType Type);

/// <summary>An integer of a request, of any width, judged by value: <see cref="Value"/> is the
/// exact value when it fits a long, else long.MinValue or long.MaxValue (which no range accepts);
/// <see cref="Text"/> is the literal as sent, for messages.</summary>
public readonly record struct Integer(long Value, string Text)
{
    public override string ToString() => Text;
}

/// <summary>
/// One request line, checked in this order (docs/protocol.md, "Order of checks"): it is JSON
/// whose every string is valid text; it is an object; no key appears twice; it has a string
/// <c>op</c>; the op is known; it has no field the op does not take; every field the op takes is
/// present (unless optional) and of its type. Each failure is a <see cref="BadRequestException"/>.
/// </summary>
public sealed class Request
{
    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 64 };
    private readonly Dictionary<string, object> values = new(StringComparer.Ordinal);
    private readonly JsonElement root;

    private Request(JsonElement root, string op)
    {
        this.root = root;
        Op = op;
    }

    public string Op { get; }

    /// <summary>Steps 1–4: JSON, valid strings, an object without duplicate keys, a string op.</summary>
    public static Request Parse(string line)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(line, Options);
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new BadRequestException($"malformed JSON: {e.Message}");
        }
        catch (ArgumentException e)
        {
            // The line itself holds a lone surrogate: it is not text, so not JSON.
            throw new BadRequestException($"the line is not valid text: {e.Message}");
        }
        CheckStrings(root);
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new BadRequestException("a request is a JSON object");
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!seen.Add(property.Name))
            {
                throw new BadRequestException($"field '{property.Name}' appears twice");
            }
        }
        if (!root.TryGetProperty("op", out var op) || op.ValueKind != JsonValueKind.String)
        {
            throw new BadRequestException("missing string field 'op'");
        }
        return new Request(root, op.GetString()!);
    }

    /// <summary>Steps 6–7: no field but <paramref name="fields"/>, each present and of its type.</summary>
    public void Bind(IReadOnlyList<FieldSpec> fields)
    {
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name != "op" && !Contains(fields, property.Name))
            {
                throw new BadRequestException($"op '{Op}' takes no field '{property.Name}'");
            }
        }
        foreach (var (name, type) in fields)
        {
            if (!root.TryGetProperty(name, out var value))
            {
                if (type is FieldType.OptionalPolicy or FieldType.OptionalInteger)
                {
                    continue;
                }
                throw new BadRequestException($"op '{Op}' needs field '{name}'");
            }
            values[name] = type switch
            {
                FieldType.Integer or FieldType.OptionalInteger => AsInteger(value, name),
                FieldType.Integers => AsIntegers(value, name),
                FieldType.Tokens => AsTokens(value, name),
                FieldType.Hash => AsHash(value, name),
                _ => AsPolicy(value, name),
            };
        }
    }

    public Integer Integer(string name) => (Integer)values[name];

    /// <summary>An optional integer field, or null when absent.</summary>
    public Integer? OptionalInteger(string name) => values.TryGetValue(name, out var value) ? (Integer)value : null;

    public Integer[] Integers(string name) => (Integer[])values[name];

    public uint[] Tokens(string name) => (uint[])values[name];

    public ulong Hash(string name) => (ulong)values[name];

    /// <summary>The policy named, or <paramref name="absent"/> when the field is absent.</summary>
    public Allocation.Policy Policy(string name, Allocation.Policy absent) =>
        values.TryGetValue(name, out var value) ? (Allocation.Policy)value : absent;

    private static bool Contains(IReadOnlyList<FieldSpec> fields, string name)
    {
        foreach (var field in fields)
        {
            if (field.Name == name)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Every property name and string value must decode to valid text (an escaped lone
    /// surrogate is valid JSON syntax but not a string).</summary>
    private static void CheckStrings(JsonElement element)
    {
        try
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.String:
                    _ = element.GetString();
                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        CheckStrings(item);
                    }
                    break;
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        _ = property.Name;
                        CheckStrings(property.Value);
                    }
                    break;
            }
        }
        catch (InvalidOperationException e)
        {
            throw new BadRequestException($"a string is not valid text: {e.Message}");
        }
    }

    private static Integer AsInteger(JsonElement value, string name)
    {
        string text = value.ValueKind == JsonValueKind.Number ? value.GetRawText() : "";
        if (text.Length == 0 || text.AsSpan().IndexOfAny('.', 'e', 'E') >= 0)
        {
            throw new BadRequestException($"field '{name}' must hold integers (JSON integer literals)");
        }
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long exact))
        {
            return new Integer(exact, text);
        }
        return new Integer(text[0] == '-' ? long.MinValue : long.MaxValue, text);
    }

    private static Integer[] AsIntegers(JsonElement value, string name)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw new BadRequestException($"field '{name}' must be an array of integers");
        }
        var result = new Integer[value.GetArrayLength()];
        int i = 0;
        foreach (var item in value.EnumerateArray())
        {
            result[i++] = AsInteger(item, name);
        }
        return result;
    }

    private static uint[] AsTokens(JsonElement value, string name)
    {
        Integer[] values = AsIntegers(value, name);
        var tokens = new uint[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i].Value < 0 || values[i].Value > uint.MaxValue)
            {
                throw new BadRequestException($"token {values[i]} in '{name}' is not a u32");
            }
            tokens[i] = (uint)values[i].Value;
        }
        return tokens;
    }

    private static ulong AsHash(JsonElement value, string name)
    {
        ulong number;
        switch (value.ValueKind)
        {
            case JsonValueKind.Number:
                string raw = value.GetRawText();
                string digits = raw == "-0" ? "0" : raw;
                if (digits.AsSpan().IndexOfAnyExceptInRange('0', '9') < 0
                    && ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out number))
                {
                    return number;
                }
                break;
            case JsonValueKind.String:
                string text = value.GetString()!;
                bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
                ReadOnlySpan<char> body = hex ? text.AsSpan(2) : text.AsSpan();
                bool wellFormed = body.Length > 0 && (hex ? IsHex(body) : body.IndexOfAnyExceptInRange('0', '9') < 0);
                if (wellFormed && ulong.TryParse(body, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out number))
                {
                    return number;
                }
                break;
        }
        throw new BadRequestException($"field '{name}' must be a u64: decimal string, \"0x…\" hex string or integer");
    }

    private static Allocation.Policy AsPolicy(JsonElement value, string name) =>
        value.ValueKind == JsonValueKind.String ? value.GetString() switch
        {
            "lifo" => Allocation.Policy.LifoPreferUnhashed,
            "lru" => Allocation.Policy.Lru,
            _ => throw new BadRequestException($"field '{name}' must be \"lifo\" or \"lru\""),
        }
        : throw new BadRequestException($"field '{name}' must be \"lifo\" or \"lru\"");

    private static bool IsHex(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }
        return true;
    }
}
