using System;
using System.IO;
using System.Linq;
using PagedKv.Verification;
using Spectre.Console;

namespace PagedKv.Cli;

/// <summary>What `check` prints at the end, and the exit code that goes with it.</summary>
internal static class CheckReport
{
    public static int Divergence(PortCampaign.Found d, string repro, ulong seed)
    {
        var f = d.Failure;
        File.WriteAllLines(repro, f.Protocol);
        AnsiConsole.MarkupLine($"[red bold]DIVERGENCE[/] after {d.OpsBeforeFirst:N0} ops without one (seed {seed}; rerun with --seed {seed} and the same flags)");
        Console.WriteLine(Verdict(d));
        Console.WriteLine(f.Report);
        AnsiConsole.MarkupLine($"history: [cyan]{Markup.Escape(repro)}[/] ({f.Protocol.Length} requests); `paged-kv replay < {Markup.Escape(repro)}` shows the reference's replies");
        return 1;
    }

    /// <summary>One paragraph: what the history shown is, and how far it was shrunk.</summary>
    public static string Verdict(PortCampaign.Found d)
    {
        string shrunk = $"shrunk from {d.FirstFailure.Protocol.Length} to {d.Failure.Protocol.Length} requests in {d.Shrinks} steps, {d.ShrinkTime.TotalSeconds:F1} s";
        return d.Verdict switch
        {
            var v when v.IsReproduced => $"minimal history ({shrunk}); it fails on a fresh port",
            var v when v.IsShrinkBudgetSpent => $"the smallest history so far: shrinking stopped at --shrink-timeout ({shrunk}); it fails on a fresh port",
            PortCampaign.Verdict.DependsOnLifetime v =>
                $"depends on the port's earlier lifetime: the port failed at request {v.failedAtRequest:N0} of its lifetime (hello included), and this history, the one it failed in, passed on two fresh ports (not shrunk)",
            _ => "not deterministic: this history failed, then passed on a fresh port and failed on another (not shrunk)",
        };
    }

    public static int Internal(Exception e, Microsoft.FSharp.Collections.FSharpList<string> history, string repro, ulong seed)
    {
        File.WriteAllLines(repro, history);
        Console.Error.WriteLine($"check: checker-internal error (a bug in check, not in the port; seed {seed}): {e.Message}");
        Console.Error.WriteLine("the history that was running (replay protocol):");
        int i = 0;
        foreach (var line in history)
        {
            Console.Error.WriteLine($"{i++,4}  {line}");
        }
        Console.Error.WriteLine($"written to {repro}");
        return 3;
    }

    public static int Passed(PortCampaign.Result r, int restarts, ulong seed)
    {
        var table = new Table().AddColumns("histories", "ops", "invalid ops", "ops/s", "port restarts");
        table.AddRow($"{r.Totals.Histories:N0}", $"{r.Totals.Ops:N0}", $"{r.Totals.Invalid:N0} ({100 * r.Totals.InvalidShare:F1}%)", $"{r.OpsPerSecond:N0}", $"{restarts}");
        AnsiConsole.Write(table);
        var events = new Table().AddColumns("event", "count");
        foreach (var e in r.Totals.Events.OrderByDescending(kv => kv.Value))
        {
            events.AddRow(Markup.Escape(e.Key), $"{e.Value:N0}");
        }
        AnsiConsole.Write(events);
        AnsiConsole.MarkupLine($"[green bold]OK[/]: no divergence in {r.Totals.Ops:N0} ops (seed {seed})");
        return 0;
    }
}
