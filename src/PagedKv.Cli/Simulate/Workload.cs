using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace PagedKv.Cli.Simulate;

/// <summary>One request of a serving workload: when it arrives (seconds), whose it is, its prompt,
/// and how many tokens it decodes.</summary>
public sealed record Arrival(double Time, string Tenant, uint[] Prompt, int OutputLength);

/// <summary>The shape of a synthetic workload.</summary>
public sealed record WorkloadShape(
    int Requests,
    int Tenants,
    int SystemPrompts,
    double RatePerSecond,
    double FollowUpShare,
    (int Min, int Max) SystemLength,
    (int Min, int Max) UserLength,
    (int Min, int Max) OutputLength)
{
    public static readonly WorkloadShape Default = new(
        Requests: 2000, Tenants: 4, SystemPrompts: 3, RatePerSecond: 20, FollowUpShare: 0.4,
        SystemLength: (128, 1024), UserLength: (16, 256), OutputLength: (16, 256));
}

/// <summary>
/// Serving workloads for `simulate`: a seeded synthetic one — tenants sharing system prompts,
/// multi-turn conversations that resend their history (prompt, the reply it got, a new user
/// message), Poisson arrivals, uniform prompt and output lengths — or a trace file of JSONL lines
/// <c>{"t": seconds, "tenant": "…", "tokens": [u32…], "output_len": n}</c> in arrival order.
/// </summary>
public static class Workload
{
    /// <summary>The tokens a request decodes after <paramref name="prompt"/>: a function of the
    /// prompt, so that a conversation's next turn resends exactly what the last one decoded.</summary>
    public static uint[] Reply(uint[] prompt, int length)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (uint t in prompt)
        {
            h = (h ^ t) * 0x100000001B3UL;
        }
        var reply = new uint[length];
        for (int i = 0; i < length; i++)
        {
            h = (h ^ (uint)i) * 0x100000001B3UL;
            reply[i] = 500_000u + (uint)(h % 1_000_000UL);
        }
        return reply;
    }

    public static List<Arrival> Synthetic(WorkloadShape shape, ulong seed)
    {
        var rng = new Random(unchecked((int)seed ^ (int)(seed >> 32)));
        int Between((int Min, int Max) range) => rng.Next(range.Min, range.Max + 1);
        var systems = new List<uint[]>();
        for (int s = 0; s < shape.SystemPrompts; s++)
        {
            var tokens = new uint[Between(shape.SystemLength)];
            for (int i = 0; i < tokens.Length; i++)
            {
                tokens[i] = (uint)(1_000 + s * 100_000 + i);
            }
            systems.Add(tokens);
        }
        // Each tenant's finished conversations: the prompt of its last turn and the reply it got.
        var history = new List<List<uint[]>>();
        for (int t = 0; t < shape.Tenants; t++)
        {
            history.Add(new List<uint[]>());
        }
        var arrivals = new List<Arrival>(shape.Requests);
        double time = 0;
        uint nextUserToken = 10_000_000;
        for (int r = 0; r < shape.Requests; r++)
        {
            time += -Math.Log(1 - rng.NextDouble()) / shape.RatePerSecond;
            int tenant = rng.Next(shape.Tenants);
            var user = new uint[Between(shape.UserLength)];
            for (int i = 0; i < user.Length; i++)
            {
                user[i] = nextUserToken++;
            }
            int output = Between(shape.OutputLength);
            var conversations = history[tenant];
            uint[] prompt;
            if (conversations.Count > 0 && rng.NextDouble() < shape.FollowUpShare)
            {
                // A follow-up: the conversation's history resent, then the new message.
                int c = rng.Next(conversations.Count);
                prompt = [.. conversations[c], .. user];
                conversations[c] = [.. prompt, .. Reply(prompt, output)];
            }
            else
            {
                prompt = [.. systems[tenant % systems.Count], .. user];
                conversations.Add([.. prompt, .. Reply(prompt, output)]);
            }
            arrivals.Add(new Arrival(time, $"tenant-{tenant}", prompt, output));
        }
        return arrivals;
    }

    /// <exception cref="ArgumentException">A line that is not such a record, or arrivals out of order.</exception>
    public static List<Arrival> FromTrace(string file)
    {
        var arrivals = new List<Arrival>();
        int number = 0;
        foreach (string line in File.ReadLines(file))
        {
            number++;
            if (line.Trim().Length == 0)
            {
                continue;
            }
            try
            {
                using var doc = JsonDocument.Parse(line);
                var e = doc.RootElement;
                var tokens = new List<uint>();
                foreach (var t in e.GetProperty("tokens").EnumerateArray())
                {
                    tokens.Add(t.GetUInt32());
                }
                var arrival = new Arrival(e.GetProperty("t").GetDouble(), e.GetProperty("tenant").GetString()!, [.. tokens], e.GetProperty("output_len").GetInt32());
                if (arrival.Prompt.Length == 0 || arrival.OutputLength < 0 || (arrivals.Count > 0 && arrival.Time < arrivals[^1].Time))
                {
                    throw new FormatException("an empty prompt, a negative output_len, or an arrival before the previous one");
                }
                arrivals.Add(arrival);
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new ArgumentException($"{file}:{number}: not a trace record {{\"t\",\"tenant\",\"tokens\",\"output_len\"}}: {ex.Message}");
            }
        }
        return arrivals;
    }
}
