using System;
using System.Collections.Generic;
using System.Text.Json;
using PagedKv.Sequences;

namespace PagedKv.Protocol;

/// <summary>The protocol's sequence ops: PagedSeqStates by id, drawing on the session's
/// allocator, each with its own device-copy seam (<see cref="SeamCopies"/>) where the bytes it
/// writes are counted and where `fail_next_copy` makes a copy fail.</summary>
public sealed partial class ReplaySession : IDisposable
{
    private readonly SortedDictionary<int, (PagedSeqState State, SeamCopies Seam)> sequences = new();

    public void Dispose()
    {
        DropSequences();
        DropPrefix();
    }

    private void AddSequenceOps(Dictionary<string, Handler> ops)
    {
        FieldSpec seq = new("seq", FieldType.Integer);
        ops["seq_new"] = new([seq, new("block_size", FieldType.Integer), new("max_blocks", FieldType.Integer)], true, SeqNew);
        ops["seq_ensure_capacity"] = new([seq, new("target_len", FieldType.Integer)], true, r =>
        {
            var (state, seam) = Sequence(r);
            int target = Length(r.Integer("target_len"));
            var allocator = Allocator;
            return seam.Attribute(() => state.EnsureCapacity(allocator, target)) switch
            {
                EnsureCapacityResult.Done => null,
                EnsureCapacityResult.PoolExhausted => throw new ExhaustedException(
                    $"paged KV pool exhausted: need {state.BlocksFor(target) - state.Blocks.Count} blocks but only {allocator.FreeCount} free"),
                _ => throw new ExhaustedException(
                    $"paged KV: target_len={target} would need {state.BlocksFor(target)} blocks, exceeds max_blocks_per_seq={state.MaxBlocksPerSeq}"),
            };
        });
        ops["seq_set_len"] = new([seq, new("len", FieldType.Integer)], true, r => Done(() => Sequence(r).State.SetLen(Length(r.Integer("len")))));
        ops["seq_advance_len"] = new([seq, new("tokens", FieldType.Integer)], true, r => Done(() => Sequence(r).State.AdvanceLen(Length(r.Integer("tokens")))));
        ops["seq_sync"] = new([seq], true, r =>
        {
            var (state, seam) = Sequence(r);
            return seam.Attribute<Action<Utf8JsonWriter>?>(() => Done(state.SyncContextLen));
        });
        ops["seq_release"] = new([seq], true, r =>
        {
            var (state, seam) = Sequence(r);
            var allocator = Allocator;
            return seam.Attribute<Action<Utf8JsonWriter>?>(() => Done(() => state.Release(allocator)));
        });
        ops["seq_state"] = new([seq], true, r => SeqState(Sequence(r)));
    }

    private Action<Utf8JsonWriter>? SeqNew(Request r)
    {
        int id = SequenceId(r.Integer("seq"));
        var (blockSize, maxBlocks) = Shape(r);
        if (sequences.ContainsKey(id))
        {
            throw new PagedKvException(Fault.SequenceExists, id, $"sequence {id} exists");
        }
        var seam = new SeamCopies(faults);
        sequences[id] = (new PagedSeqState(accelerator(), blockSize, maxBlocks, seam), seam);
        return null;
    }

    private static Action<Utf8JsonWriter>? SeqState((PagedSeqState State, SeamCopies Seam) sequence)
    {
        var (seq, seam) = sequence;
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
            w.WriteNumber("bytes_written", seam.Bytes);
            w.WriteEndObject();
        };
    }

    private (PagedSeqState State, SeamCopies Seam) Sequence(Request r)
    {
        int id = SequenceId(r.Integer("seq"));
        return sequences.TryGetValue(id, out var seq)
            ? seq
            : throw new PagedKvException(Fault.UnknownSequence, id, $"no sequence {id}");
    }

    private static int SequenceId(Integer id) => Id(id, "sequence");

    /// <summary>Sequence and request ids are 0 … <see cref="Limits.MaxSequenceId"/>; others name none.
    /// Checked here, not only by the library, because ids arrive as integers of any width.</summary>
    private static int Id(Integer id, string what) =>
        id.Value < 0 || id.Value > Limits.MaxSequenceId
            ? throw new PagedKvException(Fault.UnknownSequence, id.Value, $"{what} id {id} is outside [0, {Limits.MaxSequenceId}]")
            : (int)id.Value;

    /// <summary>A request's block_size and max_blocks, range-checked as <see cref="PagedSeqState.CheckShape"/>
    /// does (here too, because they arrive as integers of any width and the library takes 32 bits).</summary>
    private static (int BlockSize, int MaxBlocks) Shape(Request r)
    {
        var blockSize = r.Integer("block_size");
        var maxBlocks = r.Integer("max_blocks");
        if (blockSize.Value < 1 || blockSize.Value > Limits.MaxBlockSize)
        {
            throw new PagedKvException(Fault.BlockSizeOutOfRange, blockSize.Value, $"block_size={blockSize} is outside [1, {Limits.MaxBlockSize}]");
        }
        if (maxBlocks.Value < 1 || maxBlocks.Value > Limits.MaxBlocksPerSeq)
        {
            throw new PagedKvException(Fault.MaxBlocksOutOfRange, maxBlocks.Value, $"max_blocks_per_seq={maxBlocks} is outside [1, {Limits.MaxBlocksPerSeq}]");
        }
        return ((int)blockSize.Value, (int)maxBlocks.Value);
    }

    /// <summary>Lengths and token counts are 32-bit in the API; wider values are out of range.</summary>
    private static int Length(Integer value) =>
        value.Value < int.MinValue || value.Value > int.MaxValue
            ? throw new PagedKvException(Fault.LengthOutOfRange, value.Value, $"length {value} is outside the 32-bit range")
            : (int)value.Value;

    private void DropSequences()
    {
        foreach (var (state, _) in sequences.Values)
        {
            state.Dispose();
        }
        sequences.Clear();
    }
}
