using System;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PagedKv.Allocation;

namespace PagedKv.Cli.Bench;

/// <summary>`bench WORKLOAD N|FILE [--policy lifo|lru]`: one JSON line
/// <c>{"workload","n","policy","iters","ns_per_op","bytes_per_op"}</c>. A warm-up that also sizes
/// the repetitions, then the best of 5 repetitions, each at least 0.2 s; bytes_per_op is the most
/// any repetition allocated (an allocation that happens only sometimes still shows). A quick reading for a
/// porter; claims in the docs come from the BenchmarkDotNet runs in bench/.</summary>
internal static class BenchCommand
{
    private const int Repetitions = 5;
    private static readonly TimeSpan MinRepetition = TimeSpan.FromSeconds(0.2);

    public static int Run(string workload, string size, string policyName)
    {
        if (policyName is not ("lifo" or "lru"))
        {
            return Usage($"--policy must be lifo or lru, not '{policyName}'");
        }
        var policy = policyName == "lru" ? Policy.Lru : Policy.LifoPreferUnhashed;
        AllocatorWorkload w;
        try
        {
            bool isTrace = workload == "trace";
            if (!isTrace && !int.TryParse(size, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                return Usage($"N must be a block count, not '{size}'");
            }
            w = AllocatorWorkload.Create(workload, isTrace ? 0 : int.Parse(size, CultureInfo.InvariantCulture), policy, isTrace ? size : null);
        }
        catch (Exception e) when (e is ArgumentException or System.IO.IOException or UnauthorizedAccessException)
        {
            return Usage(e.Message);
        }

        // Warm-up: double the iterations until a run takes 50 ms, then size repetitions to ≥ 0.2 s.
        long iterations = 1;
        TimeSpan elapsed;
        while ((elapsed = Time(w, iterations)) < TimeSpan.FromMilliseconds(50))
        {
            iterations *= 2;
        }
        iterations = Math.Max(1, (long)Math.Ceiling(iterations * 1.2 * MinRepetition.TotalSeconds / elapsed.TotalSeconds));

        double best = double.MaxValue;
        long bytes = 0;
        for (int r = 0; r < Repetitions; r++)
        {
            long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            TimeSpan t = Time(w, iterations);
            bytes = Math.Max(bytes, GC.GetAllocatedBytesForCurrentThread() - allocatedBefore);
            best = Math.Min(best, t.TotalSeconds);
        }
        long ops = iterations * w.OpsPerIteration;
        using var output = Console.OpenStandardOutput();
        using var json = new Utf8JsonWriter(output);
        json.WriteStartObject();
        json.WriteString("workload", workload);
        if (workload == "trace")
        {
            json.WriteString("file", size);
            json.WriteNumber("n", w.OpsPerIteration);
        }
        else
        {
            json.WriteNumber("n", int.Parse(size, CultureInfo.InvariantCulture));
        }
        json.WriteString("policy", policyName);
        json.WriteNumber("iters", ops);
        json.WriteNumber("ns_per_op", Math.Round(best * 1e9 / ops, 2));
        json.WriteNumber("bytes_per_op", Math.Round((double)bytes / ops, 3));
        json.WriteEndObject();
        json.Flush();
        output.WriteByte((byte)'\n');
        return 0;
    }

    private static TimeSpan Time(AllocatorWorkload w, long iterations)
    {
        long start = Stopwatch.GetTimestamp();
        GC.KeepAlive(w.Run(iterations));
        return Stopwatch.GetElapsedTime(start);
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"bench: {message}");
        return 2;
    }
}
