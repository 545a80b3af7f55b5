using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using PagedKv.Allocation;

namespace PagedKv.Cli.Bench;

/// <summary>
/// The allocator workloads that `bench` times and that bench/ runs under BenchmarkDotNet (this
/// file is linked there): each <see cref="Run"/> executes loop bodies on one allocator set up
/// once, except <c>trace</c>, which replays a whole trace on a fresh allocator per pass.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>alloc_free_nohash</c>: loop { b = allocate; free [b] }</item>
/// <item><c>alloc_cached</c>: setup: allocate all N, register each with a distinct hash, free
/// them all (every free block soft-cached); loop { b = allocate; register b with a fresh hash; free [b] }</item>
/// <item><c>hit_deep</c>: setup as alloc_cached, keeping the hashes; loop { h = a uniformly random
/// registered hash; b = try_acquire_by_hash h; free [b] }</item>
/// <item><c>trace FILE</c>: the allocator ops of a replay-protocol JSONL file (<c>{"in":…}</c>
/// lines or plain requests), parsed before timing; one pass = the whole trace.</item>
/// </list>
/// Hashes are distinct 64-bit values spread like SipHash outputs (splitmix64 of a counter).
/// </remarks>
public sealed class AllocatorWorkload
{
    public static readonly string[] Names = ["alloc_free_nohash", "alloc_cached", "hit_deep", "trace"];

    private readonly string name;
    private readonly Policy policy;
    private readonly BlockAllocator allocator;
    private readonly int registeredCount;
    private readonly TraceOp[] trace;
    private readonly int[] one = new int[1];
    private ulong nextHash;
    private ulong rng = 0x2545F4914F6CDD1DUL;

    private AllocatorWorkload(string name, int n, Policy policy, TraceOp[] trace)
    {
        this.name = name;
        this.policy = policy;
        this.trace = trace;
        allocator = new BlockAllocator(name == "trace" ? 0 : n, policy);
        if (name is "alloc_cached" or "hit_deep")
        {
            allocator.TryAllocateN(n, out int[]? all);
            for (int i = 0; i < n; i++)
            {
                allocator.RegisterBlockHash(all![i], FreshHash());
            }
            allocator.Free(all);
            registeredCount = n;
        }
    }

    /// <summary>Allocator ops one <see cref="Run"/> iteration executes (the trace's length for traces).</summary>
    public int OpsPerIteration => name == "trace" ? trace.Length : 1;

    /// <summary>The named workload on a fresh allocator of capacity <paramref name="n"/>.</summary>
    /// <exception cref="ArgumentException">An unknown workload, or a trace that cannot be read.</exception>
    public static AllocatorWorkload Create(string name, int n, Policy policy, string? traceFile = null)
    {
        if (Array.IndexOf(Names, name) < 0)
        {
            throw new ArgumentException($"unknown workload '{name}' ({string.Join(", ", Names)})");
        }
        if (name != "trace" && (n < 1 || n > Limits.MaxCapacity))
        {
            throw new ArgumentException($"N must be in [1, {Limits.MaxCapacity}], not {n}");
        }
        TraceOp[] ops = name == "trace" ? ParseTrace(traceFile ?? throw new ArgumentException("trace needs a FILE")) : [];
        return new AllocatorWorkload(name, n, policy, ops);
    }

    /// <summary>Runs <paramref name="iterations"/> loop bodies (trace: whole passes); returns a
    /// value that depends on every result, so nothing is optimized away.</summary>
    public long Run(long iterations)
    {
        long sink = 0;
        switch (name)
        {
            case "alloc_free_nohash":
                for (long i = 0; i < iterations; i++)
                {
                    allocator.TryAllocate(out one[0]);
                    allocator.Free(one);
                    sink += one[0];
                }
                break;
            case "alloc_cached":
                for (long i = 0; i < iterations; i++)
                {
                    allocator.TryAllocate(out one[0]);
                    allocator.RegisterBlockHash(one[0], FreshHash());
                    allocator.Free(one);
                    sink += one[0];
                }
                break;
            case "hit_deep":
                for (long i = 0; i < iterations; i++)
                {
                    // The k-th registered hash is SplitMix(k) (FreshHash), so a uniformly random
                    // registered hash is computed, not read from an N-entry array (whose random read
                    // would add a cache miss of the harness's own to every iteration).
                    ulong hash = SplitMix(1 + NextRandom() % (ulong)registeredCount);
                    if (!allocator.TryAcquireByHash(hash, out one[0]))
                    {
                        throw new InvalidOperationException($"hit_deep: hash {hash} missed; every registered hash must hit");
                    }
                    allocator.Free(one);
                    sink += one[0];
                }
                break;
            default:
                for (long i = 0; i < iterations; i++)
                {
                    sink += Replay();
                }
                break;
        }
        return sink;
    }

    private ulong FreshHash() => SplitMix(++nextHash);

    private ulong NextRandom()
    {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
    }

    private static ulong SplitMix(ulong x)
    {
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    private enum Kind
    {
        New, Allocate, AllocateN, Free, Acquire, AcquireMany, Register, TryAcquireByHash, Query,
    }

    private readonly record struct TraceOp(Kind Kind, int Value, ulong Hash, int[] Blocks, Policy? Policy);

    /// <summary>One pass over the trace on a fresh allocator (made by its <c>new</c>).</summary>
    private long Replay()
    {
        long sink = 0;
        BlockAllocator a = allocator;
        foreach (var op in trace)
        {
            try
            {
                sink += Apply(ref a, op);
            }
            catch (PagedKvException)
            {
                sink++; // a trace may hold misuse; its error is part of the work
            }
        }
        return sink;
    }

    private long Apply(ref BlockAllocator a, TraceOp op)
    {
        long sink = 0;
        {
            switch (op.Kind)
            {
                case Kind.New:
                    a = new BlockAllocator(op.Value, op.Policy ?? policy);
                    break;
                case Kind.Allocate:
                    sink += a.TryAllocate(out int block) ? block : -1;
                    break;
                case Kind.AllocateN:
                    sink += a.TryAllocateN(op.Value, out int[]? blocks) ? blocks.Length : -1;
                    break;
                case Kind.Free:
                    a.Free(op.Blocks);
                    break;
                case Kind.Acquire:
                case Kind.AcquireMany:
                    a.AcquireMany(op.Blocks);
                    break;
                case Kind.Register:
                    a.RegisterBlockHash(op.Value, op.Hash);
                    break;
                case Kind.TryAcquireByHash:
                    sink += a.TryAcquireByHash(op.Hash, out int hit) ? hit : -1;
                    break;
                default:
                    sink += a.FreeCount + a.PeakInUse + a.HashTableSize;
                    break;
            }
        }
        return sink;
    }

    /// <summary>The allocator ops of a JSONL file of requests or <c>{"in":…,"out":…}</c> records;
    /// other ops (sequences, hashing, state) are skipped.</summary>
    private static TraceOp[] ParseTrace(string file)
    {
        var ops = new List<TraceOp>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(file))
        {
            lineNumber++;
            if (line.Trim().Length == 0)
            {
                continue;
            }
            try
            {
                using var doc = JsonDocument.Parse(line);
                var e = doc.RootElement.TryGetProperty("in", out var inner) ? inner : doc.RootElement;
                int Int(string field) => e.GetProperty(field).GetInt32();
                int[] Ints(string field)
                {
                    var list = new List<int>();
                    foreach (var x in e.GetProperty(field).EnumerateArray())
                    {
                        list.Add(x.GetInt32());
                    }
                    return list.ToArray();
                }
                ulong Hash() => e.GetProperty("hash") is { ValueKind: JsonValueKind.String } s ? ulong.Parse(s.GetString()!) : e.GetProperty("hash").GetUInt64();
                TraceOp? op = e.GetProperty("op").GetString() switch
                {
                    "new" => new TraceOp(Kind.New, Int("capacity"), 0, [],
                        e.TryGetProperty("policy", out var p) ? (p.GetString() == "lru" ? Policy.Lru : Policy.LifoPreferUnhashed) : null),
                    "allocate" => new TraceOp(Kind.Allocate, 0, 0, [], null),
                    "allocate_n" => new TraceOp(Kind.AllocateN, Int("n"), 0, [], null),
                    "free" => new TraceOp(Kind.Free, 0, 0, Ints("blocks"), null),
                    "acquire" => new TraceOp(Kind.Acquire, 0, 0, [Int("block")], null),
                    "acquire_many" => new TraceOp(Kind.AcquireMany, 0, 0, Ints("blocks"), null),
                    "register_block_hash" => new TraceOp(Kind.Register, Int("block"), Hash(), [], null),
                    "try_acquire_by_hash" => new TraceOp(Kind.TryAcquireByHash, 0, Hash(), [], null),
                    "ref_count" or "free_count" or "capacity" or "peak_in_use" or "hash_table_size" => new TraceOp(Kind.Query, 0, 0, [], null),
                    _ => null,
                };
                if (op is { } o)
                {
                    ops.Add(o);
                }
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
            {
                throw new ArgumentException($"{file}:{lineNumber}: not a replay-protocol request: {ex.Message}");
            }
        }
        if (ops.Count == 0 || ops[0].Kind != Kind.New)
        {
            throw new ArgumentException($"{file}: a trace starts with a new op");
        }
        return ops.ToArray();
    }
}
