using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using PagedKv.Allocation;
using PagedKv.Hashing;
using PagedKv.Sequences;

namespace PagedKv.Protocol;

/// <summary>
/// The replay protocol (docs/protocol.md) for the reference implementation: one JSON request
/// line in, one JSON response line out. A bad line gets an error response and changes nothing;
/// no line ends the session.
/// </summary>
/// <remarks>Order of checks, as the doc states it: the request itself (<see cref="Request"/>:
/// JSON, valid strings, an object, no duplicate key, a string op, a known op, no unknown field,
/// every field present and typed) → bad_request; then an allocator must exist for every op but
/// new, hello and the hashing ops → bad_request; then the values, in the op's field order →
/// invalid_argument; then the state → invalid_state or resource_exhausted.</remarks>
public sealed partial class ReplaySession
{
    /// <summary>What `hello` answers.</summary>
    public const int ProtocolVersion = 1;

    private static readonly FieldSpec[] None = [];

    /// <summary>An op: the fields it takes, whether it needs an allocator, and its handler. Every
    /// handler judges all its values before it changes anything.</summary>
    private sealed record Handler(FieldSpec[] Fields, bool NeedsAllocator, Func<Request, Action<Utf8JsonWriter>?> Run);

    private readonly Dictionary<string, Handler> handlers;
    private readonly Func<ILGPU.Runtime.Accelerator> accelerator;
    private readonly FaultArm faults = new();
    private BlockAllocator? allocator;

    /// <summary>A session whose sequences live on <paramref name="accelerator"/> (default: ILGPU's
    /// CPU accelerator, created on the first sequence op).</summary>
    public ReplaySession(Func<ILGPU.Runtime.Accelerator>? accelerator = null)
    {
        this.accelerator = accelerator ?? (() => Accelerators.Cpu);
        handlers = new(StringComparer.Ordinal)
        {
            ["hello"] = new(None, false, _ => Hello),
            ["new"] = new([new("capacity", FieldType.Integer), new("policy", FieldType.OptionalPolicy)], false, New),
            ["allocate"] = new(None, true, _ => Allocate()),
            ["allocate_n"] = new([new("n", FieldType.Integer)], true, AllocateN),
            ["free"] = new([new("blocks", FieldType.Integers)], true, r => Done(() => Allocator.Free(BlockIds(r.Integers("blocks"))))),
            ["acquire"] = new([new("block", FieldType.Integer)], true, r => Done(() => Allocator.Acquire(BlockId(r.Integer("block"))))),
            ["acquire_many"] = new([new("blocks", FieldType.Integers)], true, r => Done(() => Allocator.AcquireMany(BlockIds(r.Integers("blocks"))))),
            ["register_block_hash"] = new([new("block", FieldType.Integer), new("hash", FieldType.Hash)], true,
                r => Done(() => Allocator.RegisterBlockHash(BlockId(r.Integer("block")), r.Hash("hash")))),
            ["try_acquire_by_hash"] = new([new("hash", FieldType.Hash)], true,
                r => Allocator.TryAcquireByHash(r.Hash("hash"), out int block) ? Number(block) : null),
            ["ref_count"] = new([new("block", FieldType.Integer)], true, r => Number(Allocator.RefCount(BlockId(r.Integer("block"))))),
            ["free_count"] = new(None, true, _ => Number(Allocator.FreeCount)),
            ["capacity"] = new(None, true, _ => Number(Allocator.Capacity)),
            ["peak_in_use"] = new(None, true, _ => Number(Allocator.PeakInUse)),
            ["hash_table_size"] = new(None, true, _ => Number(Allocator.HashTableSize)),
            ["state"] = new(None, true, _ => State()),
            ["block_hash"] = new([new("parent", FieldType.Hash), new("tokens", FieldType.Tokens)], false,
                r => HashValue(BlockHasher.BlockHash(r.Hash("parent"), r.Tokens("tokens")))),
            ["block_hash_chain"] = new([new("tokens", FieldType.Tokens), new("block_size", FieldType.Integer)], false, BlockHashChain),
            ["fail_next_copy"] = new([new("copy", FieldType.Integer)], false, FailNextCopy),
        };
        AddSequenceOps(handlers);
        AddPrefixOps(handlers);
    }

    /// <summary>Answers one request line; never throws for any line.</summary>
    public string Handle(string line)
    {
        bool arming = false;
        try
        {
            var request = Request.Parse(line);
            if (!handlers.TryGetValue(request.Op, out var handler))
            {
                throw new BadRequestException($"unknown op '{request.Op}'");
            }
            request.Bind(handler.Fields);
            if (handler.NeedsAllocator)
            {
                _ = Allocator;
            }
            var ok = handler.Run(request);
            // Only a fail_next_copy that was accepted leaves its arm for the next request; a
            // rejected one disarms like any other request.
            arming = request.Op == "fail_next_copy";
            return Write(w =>
            {
                w.WritePropertyName("ok");
                if (ok is null)
                {
                    w.WriteNullValue();
                }
                else
                {
                    ok(w);
                }
            });
        }
        catch (BadRequestException e)
        {
            return Error("bad_request", e.Message);
        }
        catch (ExhaustedException e)
        {
            return Error("resource_exhausted", e.Message);
        }
        catch (PagedKvException e)
        {
            return Error(e.Kind == ErrorKind.InvalidArgument ? "invalid_argument" : "invalid_state", e.Message);
        }
        catch (Exception e) when (e is DeviceFaultException or DeviceMirrorLostException)
        {
            return Error("device_error", e.Message);
        }
        catch (Exception e)
        {
            // Never reached by a correct reference (the protocol fuzz property asserts it): the
            // session goes on rather than end on a bug.
            return Error("internal_error", $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            if (!arming)
            {
                faults.Disarm(); // an armed fault applies to the next request only
            }
        }
    }

    /// <summary>Runs every line of <paramref name="input"/>, writing one response line each
    /// (blank lines are skipped); flushes after each line. A line past
    /// <see cref="ProtocolLimits.MaxRequestLineChars"/> is answered bad_request and skipped
    /// without being held; the session goes on.</summary>
    public void Run(TextReader input, TextWriter output) => Run(input, output, ProtocolLimits.MaxRequestLineChars);

    /// <summary><see cref="Run(TextReader, TextWriter)"/> with another line limit.</summary>
    public void Run(TextReader input, TextWriter output, int maxLineChars)
    {
        var lines = new BoundedLineReader(input, maxLineChars);
        while (lines.TryRead(out string? line, out long length))
        {
            if (line is null)
            {
                output.WriteLine(Error("bad_request",
                    $"a request line of {length} characters is past the limit of {maxLineChars} (ProtocolLimits.MaxRequestLineChars); skipped"));
            }
            else if (line.Trim().Length == 0)
            {
                continue;
            }
            else
            {
                output.WriteLine(Handle(line));
            }
            output.Flush();
        }
    }

    private BlockAllocator Allocator =>
        allocator ?? throw new BadRequestException("no allocator: send {\"op\":\"new\",\"capacity\":N} first");

    private static Action<Utf8JsonWriter> Hello => w =>
    {
        w.WriteStartObject();
        w.WriteNumber("protocol", ProtocolVersion);
        w.WriteStartArray("profiles");
        w.WriteStringValue("lifo");
        w.WriteStringValue("lru");
        w.WriteStringValue("any");
        w.WriteEndArray();
        w.WriteStartArray("features");
        foreach (string feature in new[] { "state", "hash", "alloc", "seq", "device_faults", "req" })
        {
            w.WriteStringValue(feature);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    };

    private Action<Utf8JsonWriter>? New(Request r)
    {
        var capacity = r.Integer("capacity");
        var policy = r.Policy("policy", Policy.LifoPreferUnhashed);
        if (capacity.Value < 0 || capacity.Value > Limits.MaxCapacity)
        {
            throw new PagedKvException(Fault.CapacityOutOfRange, capacity.Value,
                $"capacity={capacity} is outside [0, {Limits.MaxCapacity}]");
        }
        allocator = new BlockAllocator((int)capacity.Value, policy);
        DropSequences();
        DropPrefix();
        return null;
    }

    private Action<Utf8JsonWriter>? Allocate()
    {
        if (!Allocator.TryAllocate(out int block))
        {
            throw new ExhaustedException($"paged KV pool exhausted (capacity={Allocator.Capacity} blocks, all in use)");
        }
        return Number(block);
    }

    private Action<Utf8JsonWriter>? AllocateN(Request r)
    {
        var n = r.Integer("n");
        if (n.Value < 0)
        {
            throw new PagedKvException(Fault.CountOutOfRange, n.Value, $"allocate_n: n={n} is negative");
        }
        if (n.Value > Allocator.FreeCount || !Allocator.TryAllocateN((int)n.Value, out int[]? blocks))
        {
            throw new ExhaustedException($"paged KV pool exhausted: need {n} blocks but only {Allocator.FreeCount} free");
        }
        return w =>
        {
            w.WriteStartArray();
            foreach (int b in blocks)
            {
                w.WriteNumberValue(b);
            }
            w.WriteEndArray();
        };
    }

    private Action<Utf8JsonWriter>? State()
    {
        var s = Allocator.Snapshot();
        return w =>
        {
            w.WriteStartObject();
            w.WriteNumber("capacity", s.Capacity);
            WriteArray(w, "free_list", s.FreeList);
            WriteArray(w, "ref_counts", s.RefCounts);
            w.WriteStartArray("hash_table");
            foreach (var (hash, block) in s.HashTable)
            {
                w.WriteStartObject();
                w.WriteString("hash", hash.ToString());
                w.WriteNumber("block", block);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("peak_in_use", s.PeakInUse);
            w.WriteEndObject();
        };
    }

    private static Action<Utf8JsonWriter>? BlockHashChain(Request r)
    {
        uint[] tokens = r.Tokens("tokens");
        var blockSize = r.Integer("block_size");
        if (blockSize.Value < 1 || blockSize.Value > Limits.MaxBlockSize)
        {
            throw new PagedKvException(Fault.BlockSizeOutOfRange, blockSize.Value,
                $"block_size={blockSize} is outside [1, {Limits.MaxBlockSize}]");
        }
        ulong[] hashes = BlockHasher.BlockHashChain(tokens, (int)blockSize.Value);
        return w =>
        {
            w.WriteStartArray();
            foreach (ulong h in hashes)
            {
                w.WriteStringValue(h.ToString());
            }
            w.WriteEndArray();
        };
    }

    /// <summary>Arms a device fault: the copy-th device copy (0-based) of the next request fails.</summary>
    private Action<Utf8JsonWriter>? FailNextCopy(Request r)
    {
        var copy = r.Integer("copy");
        if (copy.Value < 0 || copy.Value > int.MaxValue)
        {
            throw new PagedKvException(Fault.CountOutOfRange, copy.Value, $"fail_next_copy: copy={copy} is outside [0, {int.MaxValue}]");
        }
        faults.Arm((int)copy.Value);
        return null;
    }

    /// <summary>A block id judged by value: outside [0, capacity) is invalid_argument.</summary>
    private int BlockId(Integer id)
    {
        if (id.Value < 0 || id.Value >= Allocator.Capacity)
        {
            throw new PagedKvException(Fault.BlockOutOfRange, id.Value, $"block {id} is outside [0, {Allocator.Capacity})");
        }
        return (int)id.Value;
    }

    /// <summary>Ids of a batch; the first (in order) outside [0, capacity) is reported.</summary>
    private int[] BlockIds(Integer[] ids) => Array.ConvertAll(ids, BlockId);

    private static Action<Utf8JsonWriter>? Done(Action action)
    {
        action();
        return null;
    }

    private static Action<Utf8JsonWriter> Number(long value) => w => w.WriteNumberValue(value);

    private static Action<Utf8JsonWriter> HashValue(ulong value) => w => w.WriteStringValue(value.ToString());

    private static void WriteArray(Utf8JsonWriter w, string name, int[] values)
    {
        w.WriteStartArray(name);
        foreach (int v in values)
        {
            w.WriteNumberValue(v);
        }
        w.WriteEndArray();
    }

    private static string Error(string kind, string message) => Write(w =>
    {
        w.WriteString("err", kind);
        w.WriteString("msg", message);
    });

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private sealed class ExhaustedException(string message) : Exception(message);
}
