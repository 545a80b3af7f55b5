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
/// it never ends the session.
/// </summary>
public sealed partial class ReplaySession
{
    /// <summary>An op: the fields it takes, and its handler. Every handler reads all its fields
    /// before it changes anything, so a missing or mistyped field is a bad_request that has
    /// changed nothing.</summary>
    private sealed record Handler(string[] Fields, Func<Request, Action<Utf8JsonWriter>?> Run);

    private readonly Dictionary<string, Handler> handlers;
    private BlockAllocator? allocator;
    private readonly Func<ILGPU.Runtime.Accelerator> accelerator;

    /// <summary>A session whose sequences live on <paramref name="accelerator"/> (default: ILGPU's
    /// CPU accelerator, created on the first sequence op).</summary>
    public ReplaySession(Func<ILGPU.Runtime.Accelerator>? accelerator = null)
    {
        this.accelerator = accelerator ?? (() => PagedKv.Protocol.Accelerators.Cpu);
        handlers = new(StringComparer.Ordinal)
        {
            ["new"] = new(["capacity", "policy"], New),
            ["allocate"] = new([], _ => Allocate()),
            ["allocate_n"] = new(["n"], AllocateN),
            ["free"] = new(["blocks"], r => Done(() => Allocator.Free(BlockIds(r.Integers("blocks"))))),
            ["acquire"] = new(["block"], r => Done(() => Allocator.Acquire(BlockIds([r.Integer("block")])[0]))),
            ["acquire_many"] = new(["blocks"], r => Done(() => Allocator.AcquireMany(BlockIds(r.Integers("blocks"))))),
            ["register_block_hash"] = new(["block", "hash"], RegisterBlockHash),
            ["try_acquire_by_hash"] = new(["hash"], TryAcquireByHash),
            ["ref_count"] = new(["block"], r => Number(Allocator.RefCount(BlockIds([r.Integer("block")])[0]))),
            ["free_count"] = new([], _ => Number(Allocator.FreeCount)),
            ["capacity"] = new([], _ => Number(Allocator.Capacity)),
            ["peak_in_use"] = new([], _ => Number(Allocator.PeakInUse)),
            ["hash_table_size"] = new([], _ => Number(Allocator.HashTableSize)),
            ["state"] = new([], _ => State()),
            ["block_hash"] = new(["parent", "tokens"], BlockHash),
            ["block_hash_chain"] = new(["tokens", "block_size"], BlockHashChain),
        };
        AddSequenceOps(handlers);
    }

    /// <summary>Answers one request line.</summary>
    public string Handle(string line)
    {
        try
        {
            var request = Request.Parse(line);
            if (!handlers.TryGetValue(request.Op, out var handler))
            {
                throw new BadRequestException($"unknown op '{request.Op}'");
            }
            request.EnsureOnly(handler.Fields);
            var ok = handler.Run(request);
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
    }

    /// <summary>Runs every line of <paramref name="input"/>, writing one response line each.</summary>
    public void Run(TextReader input, TextWriter output)
    {
        while (input.ReadLine() is string line)
        {
            if (line.Trim().Length == 0)
            {
                continue;
            }
            output.WriteLine(Handle(line));
        }
        output.Flush();
    }

    private BlockAllocator Allocator =>
        allocator ?? throw new BadRequestException("no allocator: send {\"op\":\"new\",\"capacity\":N} first");

    private Action<Utf8JsonWriter>? New(Request r)
    {
        long capacity = r.Integer("capacity");
        if (capacity < int.MinValue || capacity > int.MaxValue)
        {
            throw new PagedKvException(Fault.CapacityOutOfRange, capacity,
                $"capacity={capacity} is outside [0, {Limits.MaxCapacity}]");
        }
        var policy = r.OptionalString("policy") switch
        {
            null or "lifo" => Policy.LifoPreferUnhashed,
            "lru" => Policy.Lru,
            string other => throw new BadRequestException($"field 'policy' must be \"lifo\" or \"lru\", not \"{other}\""),
        };
        allocator = new BlockAllocator((int)capacity, policy);
        DropSequences();
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
        long n = r.Integer("n");
        if (n < 0)
        {
            throw new PagedKvException(Fault.CountOutOfRange, n, $"allocate_n: n={n} is negative");
        }
        if (n > Allocator.FreeCount || !Allocator.TryAllocateN((int)n, out int[]? blocks))
        {
            throw new ExhaustedException($"paged KV pool exhausted: need {n} blocks but only {Allocator.FreeCount} free");
        }
        return Numbers(blocks);
    }

    private Action<Utf8JsonWriter>? RegisterBlockHash(Request r)
    {
        int block = BlockIds([r.Integer("block")])[0];
        ulong hash = r.Hash("hash");
        Allocator.RegisterBlockHash(block, hash);
        return null;
    }

    private Action<Utf8JsonWriter>? TryAcquireByHash(Request r)
    {
        ulong hash = r.Hash("hash");
        return Allocator.TryAcquireByHash(hash, out int block) ? Number(block) : null;
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

    private static Action<Utf8JsonWriter>? BlockHash(Request r)
    {
        ulong parent = r.Hash("parent");
        ulong hash = BlockHasher.BlockHash(parent, r.Tokens("tokens"));
        return w => w.WriteStringValue(hash.ToString());
    }

    private static Action<Utf8JsonWriter>? BlockHashChain(Request r)
    {
        uint[] tokens = r.Tokens("tokens");
        long blockSize = r.Integer("block_size");
        if (blockSize < 1 || blockSize > Limits.MaxBlockSize)
        {
            throw new PagedKvException(Fault.BlockSizeOutOfRange, blockSize,
                $"block_size={blockSize} is outside [1, {Limits.MaxBlockSize}]");
        }
        ulong[] hashes = BlockHasher.BlockHashChain(tokens, (int)blockSize);
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

    /// <summary>Ids arrive as JSON integers of any width; the first (in order) outside
    /// [0, capacity) is reported here exactly as the allocator would report it.</summary>
    private int[] BlockIds(long[] ids)
    {
        var result = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] < 0 || ids[i] >= Allocator.Capacity)
            {
                throw new PagedKvException(Fault.BlockOutOfRange, ids[i],
                    $"block {ids[i]} is outside [0, {Allocator.Capacity})");
            }
            result[i] = (int)ids[i];
        }
        return result;
    }

    private static Action<Utf8JsonWriter>? Done(Action action)
    {
        action();
        return null;
    }

    private static Action<Utf8JsonWriter> Number(long value) => w => w.WriteNumberValue(value);

    private static Action<Utf8JsonWriter> Numbers(int[] values) => w =>
    {
        w.WriteStartArray();
        foreach (int v in values)
        {
            w.WriteNumberValue(v);
        }
        w.WriteEndArray();
    };

    private static void WriteArray(Utf8JsonWriter w, string name, int[] values)
    {
        w.WritePropertyName(name);
        Numbers(values)(w);
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
