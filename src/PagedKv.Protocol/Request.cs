using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text.Json;

namespace PagedKv.Protocol;

/// <summary>A request line is malformed: bad JSON, unknown op, missing or mistyped field.</summary>
public sealed class BadRequestException(string message) : Exception(message);

/// <summary>
/// One parsed request line with typed, strict field access: every field must be present, of
/// the right JSON type, and every field present must be read by the op (no unknown fields).
/// </summary>
public sealed class Request
{
    private readonly JsonElement root;
    private readonly HashSet<string> present = new(StringComparer.Ordinal);

    private Request(JsonElement root, string op)
    {
        this.root = root;
        Op = op;
        foreach (var property in root.EnumerateObject())
        {
            if (!present.Add(property.Name))
            {
                throw new BadRequestException($"field '{property.Name}' appears twice");
            }
        }
        present.Remove("op");
    }

    public string Op { get; }

    public static Request Parse(string line)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new BadRequestException($"malformed JSON: {e.Message}");
        }
        var root = document.RootElement.Clone();
        document.Dispose();
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new BadRequestException("a request is a JSON object");
        }
        if (!root.TryGetProperty("op", out var op) || op.ValueKind != JsonValueKind.String)
        {
            throw new BadRequestException("missing string field 'op'");
        }
        return new Request(root, op.GetString()!);
    }

    /// <summary>Throws if a field is present that the op does not take.</summary>
    public void EnsureOnly(string[] fields)
    {
        foreach (var name in present)
        {
            if (Array.IndexOf(fields, name) < 0)
            {
                throw new BadRequestException($"op '{Op}' takes no field '{name}'");
            }
        }
    }

    private JsonElement Field(string name)
    {
        if (!root.TryGetProperty(name, out var value))
        {
            throw new BadRequestException($"op '{Op}' needs field '{name}'");
        }
        return value;
    }

    /// <summary>A JSON string, or null when the field is absent.</summary>
    public string? OptionalString(string name)
    {
        if (!root.TryGetProperty(name, out var value))
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : throw new BadRequestException($"field '{name}' must be a string");
    }

    /// <summary>A JSON integer (any size that fits a long).</summary>
    public long Integer(string name) => AsInteger(Field(name), name);

    /// <summary>An array of JSON integers.</summary>
    public long[] Integers(string name)
    {
        var value = Field(name);
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw new BadRequestException($"field '{name}' must be an array of integers");
        }
        var result = new long[value.GetArrayLength()];
        int i = 0;
        foreach (var item in value.EnumerateArray())
        {
            result[i++] = AsInteger(item, name);
        }
        return result;
    }

    /// <summary>An array of u32 tokens.</summary>
    public uint[] Tokens(string name)
    {
        long[] values = Integers(name);
        var tokens = new uint[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] < 0 || values[i] > uint.MaxValue)
            {
                throw new BadRequestException($"token {values[i]} in '{name}' is not a u32");
            }
            tokens[i] = (uint)values[i];
        }
        return tokens;
    }

    /// <summary>A u64 hash: decimal string, "0x…" hex string, or JSON integer.</summary>
    public ulong Hash(string name)
    {
        var value = Field(name);
        ulong number;
        switch (value.ValueKind)
        {
            case JsonValueKind.Number when value.TryGetUInt64(out number):
                return number;
            case JsonValueKind.String:
                string text = value.GetString()!;
                bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                    ? ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out number)
                    : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out number);
                if (ok)
                {
                    return number;
                }
                break;
        }
        throw new BadRequestException($"field '{name}' must be a u64: decimal string, \"0x…\" hex string or integer");
    }

    private static long AsInteger(JsonElement value, string name)
    {
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long number))
        {
            return number;
        }
        throw new BadRequestException($"field '{name}' must hold integers");
    }
}
