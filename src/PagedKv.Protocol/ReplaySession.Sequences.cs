using System;
using System.Collections.Generic;
using System.Text.Json;
using PagedKv.Sequences;

namespace PagedKv.Protocol;

/// <summary>The protocol's sequence ops: PagedSeqStates by id, drawing on the session's allocator.</summary>
public sealed partial class ReplaySession : IDisposable
{
    private readonly SortedDictionary<int, PagedSeqState> sequences = new();

    public void Dispose() => DropSequences();

    private void AddSequenceOps(Dictionary<string, Handler> ops)
    {
        ops["seq_new"] = new(["seq", "block_size", "max_blocks"], SeqNew);
        ops["seq_ensure_capacity"] = new(["seq", "target_len"], r =>
        {
            var seq = Sequence(r);
            int target = Length(r.Integer("target_len"));
            var allocator = Allocator;
            return seq.EnsureCapacity(allocator, target) switch
            {
                EnsureCapacityResult.Done => null,
                EnsureCapacityResult.PoolExhausted => throw new ExhaustedException(
                    $"paged KV pool exhausted: need {seq.BlocksFor(target) - seq.Blocks.Count} blocks but only {allocator.FreeCount} free"),
                _ => throw new ExhaustedException(
                    $"paged KV: target_len={target} would need {seq.BlocksFor(target)} blocks, exceeds max_blocks_per_seq={seq.MaxBlocksPerSeq}"),
            };
        });
        ops["seq_set_len"] = new(["seq", "len"], r => Done(() => Sequence(r).SetLen(Length(r.Integer("len")))));
        ops["seq_advance_len"] = new(["seq", "tokens"], r => Done(() => Sequence(r).AdvanceLen(Length(r.Integer("tokens")))));
        ops["seq_sync"] = new(["seq"], r => Done(() => Sequence(r).SyncContextLen()));
        ops["seq_release"] = new(["seq"], r =>
        {
            var seq = Sequence(r);
            return Done(() => seq.Release(Allocator));
        });
        ops["seq_state"] = new(["seq"], r => SeqState(Sequence(r)));
    }

    private Action<Utf8JsonWriter>? SeqNew(Request r)
    {
        _ = Allocator; // sequences draw on the allocator: none before `new`
        int id = SequenceId(r.Integer("seq"));
        long blockSize = r.Integer("block_size");
        long maxBlocks = r.Integer("max_blocks");
        if (blockSize < 1 || blockSize > Limits.MaxBlockSize)
        {
            throw new PagedKvException(Fault.BlockSizeOutOfRange, blockSize, $"block_size={blockSize} is outside [1, {Limits.MaxBlockSize}]");
        }
        if (maxBlocks < 1 || maxBlocks > Limits.MaxBlocksPerSeq)
        {
            throw new PagedKvException(Fault.MaxBlocksOutOfRange, maxBlocks, $"max_blocks_per_seq={maxBlocks} is outside [1, {Limits.MaxBlocksPerSeq}]");
        }
        if (sequences.ContainsKey(id))
        {
            throw new PagedKvException(Fault.SequenceExists, id, $"sequence {id} exists");
        }
        sequences[id] = new PagedSeqState(accelerator(), (int)blockSize, (int)maxBlocks);
        return null;
    }

    private static Action<Utf8JsonWriter>? SeqState(PagedSeqState seq)
    {
        var (table, len) = seq.ReadDevice();
        return w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("blocks");
            foreach (int b in seq.Blocks)
            {
                w.WriteNumberValue(b);
            }
            w.WriteEndArray();
            w.WriteNumber("len", seq.Len);
            w.WriteStartArray("device_table");
            foreach (uint b in table)
            {
                w.WriteNumberValue(b);
            }
            w.WriteEndArray();
            w.WriteNumber("device_len", len);
            w.WriteNumber("bytes_written", seq.BytesWritten);
            w.WriteEndObject();
        };
    }

    private PagedSeqState Sequence(Request r)
    {
        _ = Allocator;
        int id = SequenceId(r.Integer("seq"));
        return sequences.TryGetValue(id, out var seq)
            ? seq
            : throw new PagedKvException(Fault.UnknownSequence, id, $"no sequence {id}");
    }

    private static int SequenceId(long id) =>
        id < 0 || id > Limits.MaxSequenceId
            ? throw new PagedKvException(Fault.UnknownSequence, id, $"sequence id {id} is outside [0, {Limits.MaxSequenceId}]")
            : (int)id;

    /// <summary>Lengths and token counts are 32-bit in the API; wider values are out of range.</summary>
    private static int Length(long value) =>
        value < int.MinValue || value > int.MaxValue
            ? throw new PagedKvException(Fault.LengthOutOfRange, value, $"length {value} is outside the 32-bit range")
            : (int)value;

    private void DropSequences()
    {
        foreach (var seq in sequences.Values)
        {
            seq.Dispose();
        }
        sequences.Clear();
    }
}
