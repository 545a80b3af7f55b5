using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.InteropServices;
using ILGPU.Runtime;
using PagedKv.Allocation;
using PagedKv.Sequences;

namespace PagedKv.Prefix;

/// <summary>What <see cref="PrefixCache.Admit"/> did: admitted with <see cref="ComputedTokens"/>
/// prompt tokens already in the cache, or refused (nothing taken) for want of
/// <see cref="MissingBlocks"/> free blocks — the caller queues the request and retries.</summary>
public readonly record struct AdmitResult(bool Admitted, int ComputedTokens, int MissingBlocks);

/// <summary>What <see cref="PrefixCache.Append"/> did: appended, or refused (nothing changed) for
/// want of <see cref="MissingBlocks"/> free blocks — the caller preempts someone or waits.</summary>
public readonly record struct AppendResult(bool Appended, int MissingBlocks);

/// <summary>Running counts of a <see cref="PrefixCache"/>.</summary>
public sealed class PrefixCacheStats
{
    /// <summary>Requests admitted (re-admissions after a preemption included).</summary>
    public long Admitted { get; internal set; }

    /// <summary>Admissions refused for want of blocks (refuse-and-queue).</summary>
    public long Refused { get; internal set; }

    /// <summary>Appends refused for want of blocks.</summary>
    public long AppendsRefused { get; internal set; }

    public long Finished { get; internal set; }

    public long Preempted { get; internal set; }

    /// <summary>Prompt tokens of admitted requests.</summary>
    public long PromptTokens { get; internal set; }

    /// <summary>Prompt tokens found in the cache at admission (not recomputed).</summary>
    public long ReusedTokens { get; internal set; }

    /// <summary>Hash lookups made while matching prompts.</summary>
    public long Lookups { get; internal set; }

    /// <summary>Cached blocks reused (shared or resurrected).</summary>
    public long Hits { get; internal set; }

    /// <summary>Lookups whose hash matched a block holding other content, another parent or
    /// another salt: each a wrong reuse prevented (the match counted as a miss).</summary>
    public long Collisions { get; internal set; }

    /// <summary>Of <see cref="Collisions"/>, those where the cached block's salt differed.</summary>
    public long CrossSaltCollisions { get; internal set; }

    /// <summary>Full blocks registered in the hash table.</summary>
    public long Registered { get; internal set; }

    /// <summary>Full blocks not registered because another block already holds their hash (the
    /// first writer keeps it).</summary>
    public long RegistrationsSkipped { get; internal set; }
}

/// <summary>
/// Prefix caching over a <see cref="BlockAllocator"/> and <see cref="PagedSeqState"/>s: the
/// original's deferred engine integration. A request's prompt is hashed block by block (chained;
/// the request's salt is the first block's parent, so different salts never share a block); the
/// longest run of cached blocks from the start is reused — capped so that at least one prompt
/// token is left to compute — the rest allocated, and both spliced into the request's block table
/// (its device mirror written incrementally). Full blocks are registered as they are appended.
/// </summary>
/// <remarks>
/// <para>Collision safety: a hash hit counts only if the cached block holds exactly the request's
/// tokens for that block, under the same salt, with the same parent block still holding the same
/// content (its allocator <see cref="BlockAllocator.Generation"/>). Per block of the pool this costs
/// 28 bytes (a reference to its tokens, salt, parent, the parent's and its own generation), and
/// block_size × 4 + 24 more once the block is first cached (its tokens, kept and overwritten in
/// place after that): 116 bytes at block size 16. A block that another allocator user
/// re-allocated fails the check too.</para>
/// <para>All or nothing: a refused or failed call (a misuse: <see cref="PagedKvException"/>; a
/// device fault: <see cref="DeviceFaultException"/>) changes nothing.</para>
/// <para>Ends: <see cref="Finish"/> and <see cref="Preempt"/> free a request's blocks last first,
/// so that under LRU a prefix outlives its suffixes; cached blocks stay soft-free until reused.</para>
/// </remarks>
public sealed class PrefixCache : IDisposable
{
    private readonly BlockAllocator allocator;
    private readonly Accelerator accelerator;
    private readonly IBlockHasher hasher;
    private readonly Func<IDeviceCopies> copiesForNewSequence;
    private readonly Dictionary<int, Request> requests = new();
    private readonly Stack<PagedSeqState> spare = new();

    // What each cached block holds, written when the cache registers it.
    private readonly uint[]?[] cachedTokens; // per block, allocated when the block is first recorded
    private readonly ulong[] salts;
    private readonly int[] parents;
    private readonly uint[] parentGenerations;
    private readonly uint[] contentGenerations; // the block's generation + 1 when recorded; 0: nothing recorded

    /// <exception cref="PagedKvException"><see cref="Fault.BlockSizeOutOfRange"/>, <see cref="Fault.MaxBlocksOutOfRange"/>.</exception>
    public PrefixCache(BlockAllocator allocator, Accelerator accelerator, int blockSize, int maxBlocksPerSeq,
        IBlockHasher? hasher = null, Func<IDeviceCopies>? copiesForNewSequence = null)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        ArgumentNullException.ThrowIfNull(accelerator);
        PagedSeqState.CheckShape(blockSize, maxBlocksPerSeq);
        this.allocator = allocator;
        this.accelerator = accelerator;
        this.hasher = hasher ?? SipBlockHasher.Instance;
        this.copiesForNewSequence = copiesForNewSequence ?? (() => DirectCopies.Instance);
        BlockSize = blockSize;
        MaxBlocksPerSeq = maxBlocksPerSeq;
        cachedTokens = new uint[]?[allocator.Capacity];
        salts = new ulong[allocator.Capacity];
        parents = new int[allocator.Capacity];
        parentGenerations = new uint[allocator.Capacity];
        contentGenerations = new uint[allocator.Capacity];
    }

    public int BlockSize { get; }

    public int MaxBlocksPerSeq { get; }

    public PrefixCacheStats Stats { get; } = new();

    /// <summary>Sequences kept for reuse by the next admissions (their device buffers allocated once).</summary>
    public int SpareSequences => spare.Count;

    /// <summary>The ids of the requests admitted and not yet finished or preempted, ascending.</summary>
    public IEnumerable<int> Requests
    {
        get
        {
            var ids = new List<int>(requests.Keys);
            ids.Sort();
            return ids;
        }
    }

    /// <summary>A request's sequence: its block table (host and device) and length.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.UnknownSequence"/>.</exception>
    public PagedSeqState Sequence(int seq) => Get(seq).Seq;

    /// <summary>A request's tokens so far (prompt tokens computed, then appended ones).</summary>
    public IReadOnlyList<uint> Tokens(int seq) => Get(seq).Tokens;

    /// <summary>A request's salt.</summary>
    public ulong Salt(int seq) => Get(seq).Salt;

    /// <summary>Admits request <paramref name="seq"/> with <paramref name="prompt"/>: reuses the
    /// longest verified run of cached blocks from the start (at most (len − 1) / block_size of
    /// them), allocates the rest of the blocks the prompt needs, splices both into the request's
    /// table, and returns how many prompt tokens are already computed (the request's length). The
    /// caller computes the rest and reports it with <see cref="Append"/>. Refused, with nothing
    /// taken, when the pool cannot cover the prompt.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.UnknownSequence"/> for an id outside
    /// [0, <see cref="Limits.MaxSequenceId"/>]; <see cref="Fault.SequenceExists"/>;
    /// <see cref="Fault.LengthOutOfRange"/> for an empty prompt or one longer than a sequence holds.</exception>
    /// <exception cref="DeviceFaultException">The device copy failed; nothing was taken.</exception>
    public AdmitResult Admit(int seq, ReadOnlySpan<uint> prompt, ulong salt)
    {
        // Values first (the id, the prompt's length), then the state (docs/protocol.md, order of checks).
        CheckId(seq);
        CheckLength(prompt.Length, "prompt");
        if (prompt.Length == 0)
        {
            throw new PagedKvException(Fault.LengthOutOfRange, 0, "a prompt has at least 1 token, not 0");
        }
        if (requests.ContainsKey(seq))
        {
            throw new PagedKvException(Fault.SequenceExists, seq, $"request {seq} is admitted already");
        }
        int needed = PagedSeqState.BlocksForTokens(BlockSize, prompt.Length);

        // The longest verified run of cached blocks, leaving at least one prompt token to compute.
        int reusable = (prompt.Length - 1) / BlockSize;
        // Counted only once the call succeeds or is refused (a device fault changes nothing).
        var hits = new List<int>();
        var hashes = new List<ulong>();
        ulong parentHash = salt;
        long lookups = 0, collisions = 0, crossSalt = 0;
        for (int i = 0; i < reusable; i++)
        {
            var blockTokens = prompt.Slice(i * BlockSize, BlockSize);
            ulong hash = hasher.Hash(parentHash, blockTokens);
            lookups++;
            if (!allocator.TryPeekHash(hash, out int block))
            {
                break;
            }
            if (!Holds(block, blockTokens, salt, i == 0 ? -1 : hits[i - 1]))
            {
                collisions++;
                crossSalt += salts[block] != salt ? 1 : 0;
                break;
            }
            if (allocator.RefCount(block) == Limits.MaxRefCount)
            {
                break; // shared as often as a block can be
            }
            hits.Add(block);
            hashes.Add(hash);
            parentHash = hash;
        }

        // All or nothing: the soft-free hits leave the free list before the rest is allocated.
        var resurrected = hits.FindAll(b => allocator.RefCount(b) == 0);
        int fresh = needed - hits.Count;
        void CountLookups()
        {
            Stats.Lookups += lookups;
            Stats.Collisions += collisions;
            Stats.CrossSaltCollisions += crossSalt;
        }
        if (!allocator.TryPlanAllocation(CollectionsMarshal.AsSpan(resurrected), fresh, out int[]? planned))
        {
            CountLookups();
            Stats.Refused++;
            return new AdmitResult(false, 0, fresh - (allocator.FreeCount - resurrected.Count));
        }

        PagedSeqState sequence = RentSequence();
        int[] table = [.. hits, .. planned];
        try
        {
            sequence.AppendBlocks(table, () =>
            {
                foreach (ulong hash in hashes)
                {
                    bool hit = allocator.TryAcquireByHash(hash, out _);
                    Debug.Assert(hit, "a verified hit vanished");
                }
                bool taken = allocator.TryAllocateN(fresh, out int[]? allocated);
                Debug.Assert(taken && allocated.AsSpan().SequenceEqual(planned), "allocation differs from its plan");
            });
        }
        catch (DeviceFaultException)
        {
            spare.Push(sequence);
            throw;
        }
        int computed = hits.Count * BlockSize;
        sequence.SetLen(computed);
        var request = new Request(sequence, salt);
        foreach (int block in table)
        {
            request.Generations.Add(allocator.Generation(block));
        }
        request.Tokens.AddRange(prompt[..computed]);
        request.Hashes.AddRange(hashes);
        requests.Add(seq, request);
        CountLookups();
        Stats.Admitted++;
        Stats.PromptTokens += prompt.Length;
        Stats.ReusedTokens += computed;
        Stats.Hits += hits.Count;
        return new AdmitResult(true, computed, 0);
    }

    /// <summary>Appends computed tokens to request <paramref name="seq"/> (the rest of its prompt
    /// as prefill computes it, then decoded tokens): grows its table as needed, all or nothing,
    /// and registers each block that becomes full under its chained hash (unless another block
    /// holds that hash: the first writer keeps it).</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.UnknownSequence"/>;
    /// <see cref="Fault.LengthOutOfRange"/> when the request would pass what a sequence holds;
    /// <see cref="Fault.RequestBlockLost"/> when its partly filled block, or a block it would fill,
    /// was freed or re-allocated by another user of the allocator.</exception>
    /// <exception cref="DeviceFaultException">The device copy failed; nothing changed.</exception>
    public AppendResult Append(int seq, ReadOnlySpan<uint> tokens)
    {
        var request = Get(seq);
        long length = (long)request.Tokens.Count + tokens.Length;
        CheckLength(length, "request");
        // Every block holding or receiving the request's tokens past its full blocks (the partly
        // filled one it continues, and those it fills) must still be the request's own.
        int written = Math.Min(PagedSeqState.BlocksForTokens(BlockSize, length), request.Seq.Blocks.Count);
        for (int i = request.Tokens.Count / BlockSize; i < written; i++)
        {
            int block = request.Seq.Blocks[i];
            if (allocator.RefCount(block) == 0 || allocator.Generation(block) != request.Generations[i])
            {
                throw new PagedKvException(Fault.RequestBlockLost, block,
                    $"block {block} of request {seq} was freed or re-allocated by another user of the allocator");
            }
        }
        int missing = request.Seq.BlocksFor((int)length) - request.Seq.Blocks.Count;
        if (missing > 0)
        {
            if (!allocator.TryPlanAllocation(missing, out int[]? planned))
            {
                Stats.AppendsRefused++;
                return new AppendResult(false, missing - allocator.FreeCount);
            }
            request.Seq.AppendBlocks(planned, () =>
            {
                bool taken = allocator.TryAllocateN(missing, out int[]? allocated);
                Debug.Assert(taken && allocated.AsSpan().SequenceEqual(planned), "allocation differs from its plan");
            });
            foreach (int block in planned)
            {
                request.Generations.Add(allocator.Generation(block));
            }
        }
        request.Tokens.AddRange(tokens);
        request.Seq.SetLen((int)length);
        RegisterFullBlocks(request);
        return new AppendResult(true, 0);
    }

    /// <summary>Ends request <paramref name="seq"/>: frees its blocks last first (its cached ones
    /// stay soft-free for later hits) and resets its sequence.</summary>
    /// <exception cref="PagedKvException"><see cref="Fault.UnknownSequence"/>; what
    /// <see cref="BlockAllocator.Free"/> would throw (another owner freed one of its blocks).</exception>
    /// <exception cref="DeviceFaultException">A device copy failed; nothing changed.</exception>
    public void Finish(int seq)
    {
        End(seq);
        Stats.Finished++;
    }

    /// <summary>As <see cref="Finish"/>, for a request evicted to make room: it can be admitted
    /// again later with its tokens so far, recomputing only what was evicted meanwhile.</summary>
    public void Preempt(int seq)
    {
        End(seq);
        Stats.Preempted++;
    }

    /// <summary>Checks every request against the invariant <see cref="PrefixCacheInvariants.RequestBounds"/>
    /// and each sequence's own; throws <see cref="InvariantViolationException"/>. (A block a request
    /// holds has at least one reference unless another user of the allocator freed it — a misuse
    /// outside the cache, which <see cref="Finish"/> then reports.)</summary>
    public void Validate()
    {
        foreach (var (seq, request) in requests)
        {
            request.Seq.Validate();
            int full = request.Tokens.Count / BlockSize;
            if (request.Seq.Len != request.Tokens.Count || request.Hashes.Count != full || request.Seq.Blocks.Count < request.Seq.BlocksFor(request.Tokens.Count))
            {
                throw new InvariantViolationException(PrefixCacheInvariants.RequestBounds,
                    $"request {seq}: {request.Tokens.Count} tokens, len {request.Seq.Len}, {request.Hashes.Count} hashes for {full} full blocks, {request.Seq.Blocks.Count} blocks");
            }
        }
    }

    /// <summary>Disposes every sequence (admitted and spare).</summary>
    public void Dispose()
    {
        foreach (var request in requests.Values)
        {
            request.Seq.Dispose();
        }
        foreach (var sequence in spare)
        {
            sequence.Dispose();
        }
        requests.Clear();
        spare.Clear();
    }

    /// <summary>Whether cached block <paramref name="block"/> holds exactly these tokens, under
    /// this salt, after this parent block (−1: none) still holding the content it had then.</summary>
    private bool Holds(int block, ReadOnlySpan<uint> tokens, ulong salt, int parent) =>
        contentGenerations[block] == allocator.Generation(block) + 1
        && salts[block] == salt
        && parents[block] == parent
        && parentGenerations[block] == (parent < 0 ? 0 : allocator.Generation(parent))
        && cachedTokens[block].AsSpan().SequenceEqual(tokens);

    private void RegisterFullBlocks(Request request)
    {
        var tokens = CollectionsMarshal.AsSpan(request.Tokens);
        for (int i = request.Hashes.Count; (i + 1) * BlockSize <= tokens.Length; i++)
        {
            var blockTokens = tokens.Slice(i * BlockSize, BlockSize);
            ulong hash = hasher.Hash(i == 0 ? request.Salt : request.Hashes[i - 1], blockTokens);
            request.Hashes.Add(hash);
            if (allocator.TryPeekHash(hash, out _))
            {
                Stats.RegistrationsSkipped++;
                continue;
            }
            int block = request.Seq.Blocks[i];
            int parent = i == 0 ? -1 : request.Seq.Blocks[i - 1];
            allocator.RegisterBlockHash(block, hash);
            blockTokens.CopyTo(cachedTokens[block] ??= new uint[BlockSize]);
            salts[block] = request.Salt;
            parents[block] = parent;
            parentGenerations[block] = parent < 0 ? 0 : allocator.Generation(parent);
            contentGenerations[block] = allocator.Generation(block) + 1;
            Stats.Registered++;
        }
    }

    private void End(int seq)
    {
        var request = Get(seq);
        request.Seq.Release(allocator, tailFirst: true);
        requests.Remove(seq);
        spare.Push(request.Seq);
    }

    private PagedSeqState RentSequence() =>
        spare.Count > 0 ? spare.Pop() : new PagedSeqState(accelerator, BlockSize, MaxBlocksPerSeq, copiesForNewSequence());

    private Request Get(int seq)
    {
        CheckId(seq);
        return requests.TryGetValue(seq, out var request)
            ? request
            : throw new PagedKvException(Fault.UnknownSequence, seq, $"no request {seq}");
    }

    private static void CheckId(int seq)
    {
        if (seq < 0 || seq > Limits.MaxSequenceId)
        {
            throw new PagedKvException(Fault.UnknownSequence, seq, $"request id {seq} is outside [0, {Limits.MaxSequenceId}]");
        }
    }

    /// <summary>A length no sequence of this cache holds: past max_blocks × block_size tokens.</summary>
    private void CheckLength(long length, string what)
    {
        if (length > (long)MaxBlocksPerSeq * BlockSize || length > int.MaxValue)
        {
            throw new PagedKvException(Fault.LengthOutOfRange, length,
                $"{what} of {length} tokens is longer than a sequence holds ({MaxBlocksPerSeq} blocks × {BlockSize})");
        }
    }

    private sealed class Request(PagedSeqState seq, ulong salt)
    {
        public PagedSeqState Seq { get; } = seq;

        public ulong Salt { get; } = salt;

        /// <summary>Tokens whose KV is computed: the sequence's length.</summary>
        public List<uint> Tokens { get; } = new();

        /// <summary>Chained hash of each full block, in order.</summary>
        public List<ulong> Hashes { get; } = new();

        /// <summary>Each table block's allocator generation when it joined the table.</summary>
        public List<uint> Generations { get; } = new();
    }
}

/// <summary>The prefix cache's invariants, each named once (see <see cref="PrefixCache.Validate"/>).</summary>
public static class PrefixCacheInvariants
{
    /// <summary>A request's length equals its tokens, it has a hash per full block, and its blocks cover its length.</summary>
    public const string RequestBounds = "prefix-request-bounds";
}
