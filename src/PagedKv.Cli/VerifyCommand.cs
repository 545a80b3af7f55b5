using System;
using System.Diagnostics;
using PagedKv.Harness;
using Spectre.Console;

namespace PagedKv.Cli;

/// <summary>The main job: the differential campaign with a progress display and a summary.</summary>
internal static class VerifyCommand
{
    public static int Run(long ops, ulong? seed)
    {
        if (ops < 1)
        {
            Console.Error.WriteLine("--ops must be at least 1");
            return 2;
        }
        // Debug builds assert invariants after every mutation: make a failed assertion an
        // exception the campaign reports and shrinks rather than a process abort.
        Trace.Listeners.Clear();
        Trace.Listeners.Add(new ThrowingListener());

        ulong campaignSeed = seed ?? (ulong)Random.Shared.NextInt64();
        AnsiConsole.MarkupLine($"[bold]verify[/]: reference implementation vs F# spec, seed [cyan]{campaignSeed}[/], at least {ops:N0} ops");

        Campaign.Result? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask("ops checked", maxValue: ops);
                result = Campaign.run(Microsoft.FSharp.Core.FuncConvert.FromFunc<int, ISut>(Differential.reference), HistoryModule.arb, ops, campaignSeed, Microsoft.FSharp.Core.FuncConvert.FromAction<Differential.Totals>(totals =>
                {
                    task.Value = Math.Min(ops, totals.Ops);
                    task.Description = $"{totals.Ops:N0} ops, {totals.Histories:N0} histories";
                }));
                task.Value = ops;
            });

        var r = result!;
        var table = new Table().AddColumns("histories", "ops", "invalid ops", "ops/s", "seed");
        table.AddRow($"{r.Totals.Histories:N0}", $"{r.Totals.Ops:N0}",
            $"{r.Totals.Invalid:N0} ({100 * r.Totals.InvalidShare:F1}%)", $"{r.OpsPerSecond:N0}", $"{r.Seed}");
        AnsiConsole.Write(table);

        if (r.Found is { } found)
        {
            AnsiConsole.MarkupLine($"[red bold]DIVERGENCE[/] (rerun: verify --seed {r.Seed} --ops {ops}; property Replay = \"{found.Value.Replay}\")");
            Console.WriteLine(found.Value.Failure.Report);
            return 1;
        }
        AnsiConsole.MarkupLine("[green bold]OK[/]: no divergence");
        return 0;
    }

    private sealed class ThrowingListener : TraceListener
    {
        public override void Write(string? message)
        {
        }

        public override void WriteLine(string? message)
        {
        }

        public override void Fail(string? message, string? detailMessage) =>
            throw new InvalidOperationException($"Debug.Assert failed: {message} {detailMessage}");
    }
}
