using System;
using System.Collections.Generic;
using System.Text.Json;
using PagedKv.Prefix;

namespace PagedKv.Protocol;

/// <summary>The protocol's prefix-cache ops: one <see cref="PrefixCache"/> over the session's
/// allocator, its requests by id (their sequences on the session's accelerator, each with its own
/// copy seam).</summary>
public sealed partial class ReplaySession
{
    private PrefixCache? prefix;

    private PrefixCache Prefix =>
        prefix ?? throw new BadRequestException("no prefix cache: send {\"op\":\"prefix_new\",\"block_size\":B,\"max_blocks\":M} first");

    private void AddPrefixOps(Dictionary<string, Handler> ops)
    {
        FieldSpec seq = new("seq", FieldType.Integer);
        FieldSpec tokens = new("tokens", FieldType.Tokens);
        ops["prefix_new"] = new([new("block_size", FieldType.Integer), new("max_blocks", FieldType.Integer), new("collide", FieldType.OptionalInteger)], true, PrefixNew);
        ops["req_admit"] = new([seq, tokens, new("salt", FieldType.Hash)], true, r =>
        {
            var cache = Prefix;
            int id = RequestId(r.Integer("seq"));
            var result = cache.Admit(id, r.Tokens("tokens"), r.Hash("salt"));
            return w =>
            {
                w.WriteStartObject();
                w.WriteBoolean("admitted", result.Admitted);
                if (result.Admitted)
                {
                    w.WriteNumber("computed", result.ComputedTokens);
                    w.WriteStartArray("blocks");
                    foreach (int b in cache.Sequence(id).Blocks)
                    {
                        w.WriteNumberValue(b);
                    }
                    w.WriteEndArray();
                }
                else
                {
                    w.WriteNumber("missing", result.MissingBlocks);
                }
                w.WriteEndObject();
            };
        });
        ops["req_append"] = new([seq, tokens], true, r =>
        {
            var result = Prefix.Append(RequestId(r.Integer("seq")), r.Tokens("tokens"));
            return w =>
            {
                w.WriteStartObject();
                w.WriteBoolean("appended", result.Appended);
                if (!result.Appended)
                {
                    w.WriteNumber("missing", result.MissingBlocks);
                }
                w.WriteEndObject();
            };
        });
        ops["req_finish"] = new([seq], true, r => Done(() => Prefix.Finish(RequestId(r.Integer("seq")))));
        ops["req_preempt"] = new([seq], true, r => Done(() => Prefix.Preempt(RequestId(r.Integer("seq")))));
        ops["req_state"] = new([seq], true, r => RequestState(Prefix, RequestId(r.Integer("seq"))));
        ops["prefix_stats"] = new([], true, _ => PrefixStats(Prefix.Stats));
    }

    private Action<Utf8JsonWriter>? PrefixNew(Request r)
    {
        var (blockSize, maxBlocks) = Shape(r);
        var collide = r.OptionalInteger("collide");
        IBlockHasher hasher = SipBlockHasher.Instance;
        var cache = new PrefixCache(Allocator, accelerator(), blockSize, maxBlocks,
            collide is { } k && k.Value >= 1 && k.Value <= int.MaxValue ? new CollidingHasher((int)k.Value) : hasher,
            () => new SeamCopies(faults));
        if (collide is { } c && (c.Value < 1 || c.Value > int.MaxValue))
        {
            cache.Dispose();
            throw new PagedKvException(Fault.CountOutOfRange, c.Value, $"collide={c} is outside [1, {int.MaxValue}]");
        }
        foreach (int admitted in prefix?.Requests ?? [])
        {
            cache.Dispose();
            throw new PagedKvException(Fault.SequenceExists, admitted, $"request {admitted} is still admitted: finish or preempt it first");
        }
        prefix?.Dispose();
        prefix = cache;
        return null;
    }

    private static Action<Utf8JsonWriter>? RequestState(PrefixCache cache, int id)
    {
        var seq = cache.Sequence(id);
        var (table, _) = seq.ReadDevice();
        return w =>
        {
            w.WriteStartObject();
            w.WriteNumber("len", seq.Len);
            w.WriteStartArray("blocks");
            foreach (int b in seq.Blocks)
            {
                w.WriteNumberValue(b);
            }
            w.WriteEndArray();
            w.WriteString("salt", cache.Salt(id).ToString());
            w.WriteStartArray("device_table");
            foreach (uint b in table)
            {
                w.WriteNumberValue(b);
            }
            w.WriteEndArray();
            w.WriteEndObject();
        };
    }

    private static Action<Utf8JsonWriter>? PrefixStats(PrefixCacheStats s) => w =>
    {
        w.WriteStartObject();
        w.WriteNumber("admitted", s.Admitted);
        w.WriteNumber("refused", s.Refused);
        w.WriteNumber("appends_refused", s.AppendsRefused);
        w.WriteNumber("finished", s.Finished);
        w.WriteNumber("preempted", s.Preempted);
        w.WriteNumber("prompt_tokens", s.PromptTokens);
        w.WriteNumber("reused_tokens", s.ReusedTokens);
        w.WriteNumber("lookups", s.Lookups);
        w.WriteNumber("hits", s.Hits);
        w.WriteNumber("collisions", s.Collisions);
        w.WriteNumber("cross_salt_collisions", s.CrossSaltCollisions);
        w.WriteNumber("registered", s.Registered);
        w.WriteNumber("registrations_skipped", s.RegistrationsSkipped);
        w.WriteEndObject();
    };

    private static int RequestId(Integer id) => Id(id, "request");

    private void DropPrefix()
    {
        prefix?.Dispose();
        prefix = null;
    }
}
