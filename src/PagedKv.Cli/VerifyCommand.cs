using System;
using System.Collections.Generic;
using System.Diagnostics;
using FsCheck;
using ILGPU.Runtime;
using Microsoft.FSharp.Core;
using PagedKv.Spec;
using PagedKv.Protocol;
using PagedKv.Verification;
using Spectre.Console;

namespace PagedKv.Cli;

/// <summary>The main job: the differential campaigns with a progress display and a summary —
/// the allocator alone, then sequences with device mirrors and the gather kernel on each
/// chosen accelerator.</summary>
internal static class VerifyCommand
{
    public static int Run(long ops, long? seqOps, ulong? seed, string accelerators, int gatherCases)
    {
        if (ops < 1 || seqOps is < 0 || gatherCases < 0)
        {
            Console.Error.WriteLine("--ops must be at least 1; --seq-ops and --gather-cases at least 0");
            return 2;
        }
        // Debug builds assert invariants after every mutation: make a failed assertion an
        // exception the campaign reports and shrinks rather than a process abort.
        Assertions.install();

        var devices = new List<(string Name, Accelerator Accelerator)>();
        foreach (string name in accelerators == "all" ? ["cpu", "cuda"] : accelerators == "none" ? [] : new[] { accelerators })
        {
            if (name is not ("cpu" or "cuda"))
            {
                Console.Error.WriteLine($"--accelerator must be cpu, cuda, all or none, not '{name}'");
                return 2;
            }
            var found = Accelerators.ByName(name);
            if (found is null)
            {
                if (accelerators == "cuda")
                {
                    Console.Error.WriteLine("--accelerator cuda: ILGPU finds no CUDA device on this machine");
                    return 2;
                }
                AnsiConsole.MarkupLine("[yellow]CUDA: no device on this machine — CUDA campaign skipped[/]");
                continue;
            }
            devices.Add((name, found));
        }

        ulong campaignSeed = seed ?? (ulong)Random.Shared.NextInt64();
        long sequenceOps = seqOps ?? Math.Max(1, ops / 4);
        AnsiConsole.MarkupLine($"[bold]verify[/]: reference implementation vs F# spec, seed [cyan]{campaignSeed}[/]");

        var table = new Table().AddColumns("campaign", "histories", "ops", "invalid ops", "device faults", "ops/s");
        var campaigns = new List<(string Name, FSharpFunc<Allocator.Policy, FSharpFunc<int, ISut>> Sut, Arbitrary<History> Arb, long Ops)>
        {
            ("allocator (lifo, lru)", FuncConvert.FromFunc<Allocator.Policy, int, ISut>((policy, capacity) => Differential.reference(policy, capacity)), HistoryModule.arb, ops),
        };
        foreach (var (name, acc) in devices)
        {
            if (sequenceOps > 0)
            {
                campaigns.Add(($"sequences on {name} ({acc.Name})", FuncConvert.FromFunc<Allocator.Policy, int, ISut>((policy, capacity) => Differential.referenceOn(acc, policy, capacity)), HistoryModule.arbWithSequences, sequenceOps));
                campaigns.Add(($"prefix cache on {name} ({acc.Name})", FuncConvert.FromFunc<Allocator.Policy, int, ISut>((policy, capacity) => Differential.referenceOn(acc, policy, capacity)), HistoryModule.arbWithRequests, sequenceOps));
            }
        }

        foreach (var (name, sut, arb, budget) in campaigns)
        {
            Campaign.Result? result = null;
            AnsiConsole.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(context =>
                {
                    var task = context.AddTask(name, maxValue: budget);
                    result = Campaign.run(sut, arb, budget, campaignSeed, FuncConvert.FromAction<Differential.Totals>(totals =>
                    {
                        task.Value = Math.Min(budget, totals.Ops);
                        task.Description = $"{name}: {totals.Ops:N0} ops, {totals.Histories:N0} histories";
                    }));
                });
            var r = result!;
            r.Totals.Events.TryGetValue("device-fault", out long faults);
            table.AddRow(name, $"{r.Totals.Histories:N0}", $"{r.Totals.Ops:N0}",
                $"{r.Totals.Invalid:N0} ({100 * r.Totals.InvalidShare:F1}%)", $"{faults:N0}", $"{r.OpsPerSecond:N0}");
            if (r.Found is { } found)
            {
                AnsiConsole.Write(table);
                AnsiConsole.MarkupLine($"[red bold]DIVERGENCE[/] in {Markup.Escape(name)} (rerun: verify --seed {r.Seed} …; property Replay = \"{found.Value.Replay}\")");
                Console.WriteLine(found.Value.Failure.Report);
                return 1;
            }
        }

        foreach (var (name, acc) in devices)
        {
            var clock = Stopwatch.StartNew();
            var cases = GatherCheck.sampleCases(campaignSeed, gatherCases);
            foreach (var c in cases)
            {
                if (!GatherCheck.gatherOn(acc, c))
                {
                    AnsiConsole.Write(table);
                    AnsiConsole.MarkupLine($"[red bold]GATHER MISMATCH[/] on {name}: {Markup.Escape(c.ToString())}");
                    return 1;
                }
            }
            table.AddRow($"gather kernel on {name}", "-", $"{gatherCases:N0} cases (f32+f16)", "-", "-", $"{gatherCases / Math.Max(clock.Elapsed.TotalSeconds, 1e-9):N0} cases/s");
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"[green bold]OK[/]: no divergence (seed {campaignSeed})");
        return 0;
    }
}
