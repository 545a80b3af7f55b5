using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;
using PagedKv.Allocation;
using PagedKv.Prefix;
using PagedKv.Protocol;
using Spectre.Console;

namespace PagedKv.Cli.Simulate;

/// <summary>`simulate`: what an engine developer runs to size a pool and pick a policy — a serving
/// workload through the prefix cache for each policy and pool size, a table (or JSON lines) of hit
/// rates, refusals, preemptions and wrong reuses prevented, and an SVG chart of hit rate against
/// pool size.</summary>
internal static class SimulateCommand
{
    public sealed record Settings(
        string Blocks, int BlockSize, string Policy, int Requests, int Tenants, double Rate, ulong? Seed,
        bool NoSalt, string? Trace, string? Plot, bool Json, int MaxBlocksPerSeq, int Collide = 0);

    public static int Run(Settings s)
    {
        int[] sizes;
        try
        {
            sizes = s.Blocks.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(b => int.Parse(b, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            return Usage($"--blocks takes pool sizes separated by commas, not '{s.Blocks}'");
        }
        if (sizes.Length == 0 || sizes.Any(b => b < 1 || b > Limits.MaxCapacity))
        {
            return Usage($"--blocks: each pool size in [1, {Limits.MaxCapacity}]");
        }
        Policy[]? policies = s.Policy switch
        {
            "lifo" => [Policy.LifoPreferUnhashed],
            "lru" => [Policy.Lru],
            "all" => [Policy.LifoPreferUnhashed, Policy.Lru],
            _ => null,
        };
        if (policies is null)
        {
            return Usage($"--policy must be lifo, lru or all, not '{s.Policy}'");
        }
        if (s.BlockSize < 1 || s.BlockSize > Limits.MaxBlockSize || s.Requests < 1 || s.Tenants < 1 || s.Rate <= 0
            || s.MaxBlocksPerSeq < 1 || s.MaxBlocksPerSeq > Limits.MaxBlocksPerSeq)
        {
            return Usage("--block-size, --requests, --tenants, --rate and --max-blocks-per-seq must be positive (and within the limits)");
        }
        if (s.Collide < 0)
        {
            return Usage($"--collide takes a number of distinct hashes >= 1 (0: the original's hash), not {s.Collide}");
        }
        IBlockHasher hasher = s.Collide > 0 ? new CollidingHasher(s.Collide) : SipBlockHasher.Instance;

        ulong seed = s.Seed ?? (ulong)Random.Shared.NextInt64();
        List<Arrival> arrivals;
        try
        {
            arrivals = s.Trace is { } trace
                ? Workload.FromTrace(trace)
                : Workload.Synthetic(WorkloadShape.Default with { Requests = s.Requests, Tenants = s.Tenants, RatePerSecond = s.Rate }, seed);
        }
        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
        {
            return Usage(e.Message);
        }
        string source = (s.Trace is { } t ? $"trace {t}" : $"synthetic, seed {seed}") + (s.Collide > 0 ? $", hashes reduced to {s.Collide} values" : "");
        if (!s.Json)
        {
            AnsiConsole.MarkupLine($"[bold]simulate[/]: {arrivals.Count:N0} requests ({Markup.Escape(source)}), block size {s.BlockSize}, {(s.NoSalt ? "tenants share the cache (no salt)" : "each tenant salted")}");
        }

        var results = new List<SimulationResult>();
        void RunAll(Action<string, int>? progress)
        {
            foreach (var policy in policies)
            {
                foreach (int blocks in sizes)
                {
                    string name = $"{(policy == Policy.Lru ? "lru" : "lifo")} × {blocks} blocks";
                    results.Add(Simulation.Run(arrivals, policy, blocks, s.BlockSize, s.MaxBlocksPerSeq, !s.NoSalt, hasher, Accelerators.Cpu,
                        done => progress?.Invoke(name, done)));
                }
            }
        }
        if (s.Json)
        {
            RunAll(null);
        }
        else
        {
            AnsiConsole.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(context =>
                {
                    var task = context.AddTask("simulate", maxValue: (double)arrivals.Count * policies.Length * sizes.Length);
                    int finishedRuns = 0;
                    string current = "";
                    RunAll((name, done) =>
                    {
                        if (name != current)
                        {
                            current = name;
                            finishedRuns = results.Count;
                        }
                        task.Value = (double)finishedRuns * arrivals.Count + done;
                        task.Description = $"simulate: {name}";
                    });
                });
        }

        if (s.Json)
        {
            foreach (var r in results)
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    policy = r.Policy,
                    blocks = r.Blocks,
                    requests = r.Requests,
                    completed = r.Completed,
                    dropped = r.Dropped,
                    prompt_tokens = r.PromptTokens,
                    reused_tokens = r.ReusedTokens,
                    hit_rate = Math.Round(r.HitRate, 4),
                    prefill_tokens = r.PrefillTokens,
                    refused = r.Refused,
                    preempted = r.Preempted,
                    peak_blocks = r.PeakBlocks,
                    wrong_reuses_prevented = r.WrongReusesPrevented,
                    wrong_reuses = r.WrongReuses,
                    cross_salt_reuses = r.CrossSaltReuses,
                    reuse_checks = r.ReuseChecks,
                    steps = r.Steps,
                }));
            }
        }
        else
        {
            var table = new Table().AddColumns("policy", "blocks", "requests", "prompt tokens", "reused", "hit rate", "prefill", "refusals", "preemptions",
                "peak blocks", "wrong reuses prevented", "wrong / cross-salt reuses");
            foreach (var r in results)
            {
                table.AddRow(r.Policy, $"{r.Blocks:N0}", $"{r.Completed:N0}" + (r.Dropped > 0 ? $" (+{r.Dropped} too large)" : ""),
                    $"{r.PromptTokens:N0}", $"{r.ReusedTokens:N0}", $"{100 * r.HitRate:F1}%", $"{r.PrefillTokens:N0}", $"{r.Refused:N0}", $"{r.Preempted:N0}",
                    $"{r.PeakBlocks:N0}", $"{r.WrongReusesPrevented:N0}", $"{r.WrongReuses} / {r.CrossSaltReuses} of {r.ReuseChecks:N0} checked");
            }
            AnsiConsole.Write(table);
        }
        if (s.Plot is { } plot)
        {
            WritePlot(plot, results, source);
            if (!s.Json)
            {
                AnsiConsole.MarkupLine($"chart: [cyan]{Markup.Escape(plot)}[/]");
            }
        }
        // A wrong reuse (cross-salt ones included) would be a bug in the cache: say so through the exit code.
        return results.Any(r => r.WrongReuses > 0) ? 1 : 0;
    }

    /// <summary>Hit rate against pool size, one line per policy, as SVG (OxyPlot's exporter: no native code).</summary>
    private static void WritePlot(string file, List<SimulationResult> results, string source)
    {
        var model = new PlotModel { Title = "Prefix-cache hit rate by pool size", Subtitle = source, Background = OxyColors.White };
        model.Legends.Add(new Legend { LegendPosition = LegendPosition.BottomRight });
        model.Axes.Add(new LogarithmicAxis { Position = AxisPosition.Bottom, Title = "pool size (blocks)", Base = 2, MajorGridlineStyle = LineStyle.Dot });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = "hit rate (prompt tokens reused, %)", Minimum = 0, Maximum = 100, MajorGridlineStyle = LineStyle.Dot });
        foreach (var group in results.GroupBy(r => r.Policy))
        {
            var series = new LineSeries { Title = group.Key, MarkerType = MarkerType.Circle };
            foreach (var r in group.OrderBy(r => r.Blocks))
            {
                series.Points.Add(new DataPoint(r.Blocks, 100 * r.HitRate));
            }
            model.Series.Add(series);
        }
        using var stream = File.Create(file);
        new SvgExporter { Width = 720, Height = 420 }.Export(model, stream);
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"simulate: {message}");
        return 2;
    }
}
