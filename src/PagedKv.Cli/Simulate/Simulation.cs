using System;
using System.Collections.Generic;
using System.Linq;
using ILGPU.Runtime;
using PagedKv.Allocation;
using PagedKv.Prefix;

namespace PagedKv.Cli.Simulate;

/// <summary>One simulated configuration's figures.</summary>
public sealed record SimulationResult(
    string Policy,
    int Blocks,
    int Requests,
    int Completed,
    int Dropped,
    long PromptTokens,
    long ReusedTokens,
    long Refused,
    long Preempted,
    int PeakBlocks,
    long WrongReusesPrevented,
    long WrongReuses,
    long CrossSaltReuses,
    long ReuseChecks,
    long Steps)
{
    /// <summary>Prompt tokens found in the cache, over all prompt tokens admitted. Re-admissions
    /// after a preemption count too, and they often find their own blocks still cached, so under
    /// pressure the hit rate can rise while the work grows: compare <see cref="PrefillTokens"/>.</summary>
    public double HitRate => PromptTokens == 0 ? 0 : (double)ReusedTokens / PromptTokens;

    /// <summary>Prompt tokens prefill had to compute (admitted minus reused), re-admissions
    /// included: the cost a pool size and policy leave to the engine.</summary>
    public long PrefillTokens => PromptTokens - ReusedTokens;
}

/// <summary>
/// A serving loop over a <see cref="PrefixCache"/>, one step per forward pass (20 ms of simulated
/// time): arrivals join a FIFO queue; the queue's head is admitted while the pool covers it (its
/// uncached prompt computed at once); every running request decodes one token per step, oldest
/// first; when the pool runs dry the newest running request is preempted and queued at the front
/// with its tokens so far, to be admitted again later. A request that could never fit (longer than
/// the pool or a sequence) is dropped and counted.
/// </summary>
/// <remarks>Every reused block is checked against what the simulator itself saw written into it —
/// the salt and a 64-bit FNV-1a fingerprint of the whole token prefix, independent of the cache's
/// own records — so wrong and cross-salt reuses are counted, not assumed away.</remarks>
public static class Simulation
{
    public const double StepSeconds = 0.02;

    private sealed class Job(int arrival, uint[] tokens, ulong salt, int output)
    {
        public int Arrival { get; } = arrival;

        /// <summary>Prompt, then every token decoded so far.</summary>
        public List<uint> Tokens { get; } = [.. tokens];

        public ulong Salt { get; } = salt;

        /// <summary>Tokens still to decode.</summary>
        public int Remaining { get; set; } = output;

        /// <summary>What this request decodes: a function of its original prompt.</summary>
        public uint[] Reply { get; } = Workload.Reply(tokens, output);

        public int Decoded => Reply.Length - Remaining;

        public int Id { get; set; } = -1;
    }

    public static SimulationResult Run(IReadOnlyList<Arrival> arrivals, Policy policy, int blocks, int blockSize, int maxBlocksPerSeq,
        bool salted, IBlockHasher hasher, Accelerator accelerator, Action<int>? onCompleted = null)
    {
        var allocator = new BlockAllocator(blocks, policy);
        using var cache = new PrefixCache(allocator, accelerator, blockSize, maxBlocksPerSeq, hasher);
        var queue = new LinkedList<Job>();
        var running = new List<Job>();
        var freeIds = new Stack<int>(Enumerable.Range(0, Limits.MaxSequenceId + 1).Reverse());
        var filled = new Dictionary<int, (ulong Salt, ulong Fingerprint)>();
        long wrong = 0, crossSalt = 0, checks = 0, steps = 0;
        int next = 0, completed = 0, dropped = 0;
        int maxTokens = Math.Min(blocks, maxBlocksPerSeq) * blockSize;

        ulong SaltOf(string tenant)
        {
            if (!salted)
            {
                return 0;
            }
            ulong h = 0xCBF29CE484222325UL;
            foreach (char c in tenant)
            {
                h = (h ^ c) * 0x100000001B3UL;
            }
            return h;
        }

        // The fingerprint of each full-block prefix of tokens: fingerprints[i] covers tokens[0, (i + 1) × blockSize).
        List<ulong> Fingerprints(List<uint> tokens)
        {
            var fingerprints = new List<ulong>(tokens.Count / blockSize);
            ulong h = 0xCBF29CE484222325UL;
            for (int i = 0; i + blockSize <= tokens.Count; i += blockSize)
            {
                for (int j = i; j < i + blockSize; j++)
                {
                    h = (h ^ tokens[j]) * 0x100000001B3UL;
                }
                fingerprints.Add(h);
            }
            return fingerprints;
        }

        // Records what the job's blocks that became full hold, from full block `from` on.
        void RecordFilled(Job job, int from)
        {
            var fingerprints = Fingerprints(job.Tokens);
            var table = cache.Sequence(job.Id).Blocks;
            for (int i = from; i < fingerprints.Count; i++)
            {
                filled[table[i]] = (job.Salt, fingerprints[i]);
            }
        }

        void Drop(Job job)
        {
            dropped++;
            if (job.Id >= 0)
            {
                freeIds.Push(job.Id);
                job.Id = -1;
            }
        }

        while (next < arrivals.Count || queue.Count > 0 || running.Count > 0)
        {
            double now = steps * StepSeconds;
            while (next < arrivals.Count && arrivals[next].Time <= now)
            {
                var a = arrivals[next];
                queue.AddLast(new Job(next, a.Prompt, SaltOf(a.Tenant), a.OutputLength));
                next++;
            }

            // Admit from the head while the pool covers it (refuse-and-queue: FIFO, no overtaking).
            while (queue.First is { } node)
            {
                var job = node.Value;
                if (job.Tokens.Count + job.Remaining > maxTokens)
                {
                    queue.RemoveFirst();
                    Drop(job);
                    continue;
                }
                job.Id = freeIds.Pop();
                var admitted = cache.Admit(job.Id, job.Tokens.ToArray(), job.Salt);
                if (!admitted.Admitted)
                {
                    freeIds.Push(job.Id);
                    job.Id = -1;
                    break;
                }
                queue.RemoveFirst();
                // Every reused block must hold what this prompt prefix puts there, under this salt.
                var fingerprints = Fingerprints(job.Tokens);
                var table = cache.Sequence(job.Id).Blocks;
                for (int i = 0; i < admitted.ComputedTokens / blockSize; i++)
                {
                    checks++;
                    bool recorded = filled.TryGetValue(table[i], out var held);
                    if (!recorded || held != (job.Salt, fingerprints[i]))
                    {
                        wrong++; // cross-salt reuses are the wrong reuses whose block holds another salt's content
                        crossSalt += recorded && held.Salt != job.Salt ? 1 : 0;
                    }
                }
                // Prefill: the rest of the prompt, into blocks reserved at admission.
                var prefill = cache.Append(job.Id, job.Tokens.Skip(admitted.ComputedTokens).ToArray());
                if (!prefill.Appended)
                {
                    throw new InvalidOperationException("a prefill into blocks reserved at admission was refused");
                }
                RecordFilled(job, admitted.ComputedTokens / blockSize);
                running.Add(job);
            }

            // Decode one token for each running request, oldest first; preempt the newest when short.
            foreach (var job in running.ToArray())
            {
                if (job.Id < 0)
                {
                    continue; // preempted earlier in this step
                }
                uint token = job.Reply[job.Decoded];
                int fullBefore = job.Tokens.Count / blockSize;
                while (!cache.Append(job.Id, [token]).Appended)
                {
                    var victim = running[^1];
                    cache.Preempt(victim.Id);
                    freeIds.Push(victim.Id);
                    victim.Id = -1;
                    running.RemoveAt(running.Count - 1);
                    if (victim == job)
                    {
                        break;
                    }
                    queue.AddFirst(victim);
                }
                if (job.Id < 0)
                {
                    if (queue.First?.Value != job)
                    {
                        queue.AddFirst(job);
                    }
                    continue;
                }
                job.Tokens.Add(token);
                job.Remaining--;
                RecordFilled(job, fullBefore);
                if (job.Remaining == 0)
                {
                    cache.Finish(job.Id);
                    freeIds.Push(job.Id);
                    job.Id = -1;
                    running.Remove(job);
                    completed++;
                    onCompleted?.Invoke(completed + dropped);
                }
            }
            steps++;
        }
        cache.Validate();
        allocator.Validate();
        var s = cache.Stats;
        return new SimulationResult(policy == Policy.Lru ? "lru" : "lifo", blocks, arrivals.Count, completed, dropped, s.PromptTokens, s.ReusedTokens,
            s.Refused, s.Preempted, allocator.PeakInUse, s.Collisions, wrong, crossSalt, checks, steps);
    }
}
