using System;
using System.IO;
using System.Linq;
using FsCheck;
using Microsoft.FSharp.Core;
using PagedKv.Spec;
using PagedKv.Verification;
using Spectre.Console;

namespace PagedKv.Cli;

/// <summary>`check --impl CMD`: drives a port with generated histories over the replay protocol,
/// shrinks what it finds, and says why. Exit 0: no divergence; 1: a divergence (report printed,
/// minimal history written to --repro); 2: a usage error or a port that cannot start.</summary>
internal static class CheckCommand
{
    public sealed record Settings(
        string Impl, long Ops, ulong? Seed, int? StateEvery, bool ValidOnly, string Profile, bool Seq, bool Req,
        int TimeoutMs, string Repro, int Window);

    public static int Run(Settings s)
    {
        if (string.IsNullOrWhiteSpace(s.Impl))
        {
            return Usage("--impl needs the command that starts the port");
        }
        PortCheck.Profile? profile = s.Profile switch
        {
            "lifo" => PortCheck.Profile.Lifo,
            "lru" => PortCheck.Profile.Lru,
            "any" => PortCheck.Profile.Any,
            _ => null,
        };
        if (profile is null)
        {
            return Usage($"--profile must be lifo, lru or any, not '{s.Profile}'");
        }
        if (s.Ops < 1 || s.StateEvery is < 0 || s.TimeoutMs < 1 || s.Window < 1)
        {
            return Usage("--ops, --timeout-ms and --window must be at least 1, --state-every at least 0");
        }
        if (s.Req && profile.IsAny)
        {
            return Usage("--req needs an exact profile (lifo or lru): a prefix cache's block ids are part of its replies");
        }

        using var port = new PortProcess(s.Impl);
        var hello = PortCheck.hello(port, s.TimeoutMs);
        if (hello.IsError)
        {
            return Usage($"the port cannot start: {hello.ErrorValue}");
        }
        int stateEvery = s.StateEvery ?? 64;
        if (hello.ResultValue is { } h)
        {
            var said = h.Value;
            if (said.Profiles.Length > 0 && !said.Profiles.Contains(s.Profile))
            {
                return Usage($"the port offers the profiles [{string.Join(", ", said.Profiles)}], not '{s.Profile}'");
            }
            if (s.Seq && said.Features.Length > 0 && !said.Features.Contains("seq"))
            {
                return Usage($"--seq: the port's features [{string.Join(", ", said.Features)}] do not include seq");
            }
            if (s.Req && said.Features.Length > 0 && !said.Features.Contains("req"))
            {
                return Usage($"--req: the port's features [{string.Join(", ", said.Features)}] do not include req");
            }
            if (s.StateEvery is null && said.Features.Length > 0 && !said.Features.Contains("state"))
            {
                stateEvery = 0;
            }
            AnsiConsole.MarkupLine($"port: protocol {said.Protocol}, profiles [[{Markup.Escape(string.Join(", ", said.Profiles))}]], features [[{Markup.Escape(string.Join(", ", said.Features))}]]");
        }
        else
        {
            AnsiConsole.MarkupLine("port: does not know hello (bad_request); the flags decide");
        }

        var options = new PortCheck.Options(profile, stateEvery, s.ValidOnly, s.Seq, s.Req, s.TimeoutMs, s.Window);
        ulong seed = s.Seed ?? (ulong)Random.Shared.NextInt64();
        var arb = PortCheck.arbitrary(profile, s.Seq, s.Req);
        AnsiConsole.MarkupLine($"[bold]check[/] [cyan]{Markup.Escape(s.Impl)}[/]: profile {s.Profile}{(s.ValidOnly ? ", valid only" : "")}{(s.Seq ? ", with sequences" : "")}{(s.Req ? ", prefix-cache requests" : "")}, state every {stateEvery} ops, seed [cyan]{seed}[/]");

        Campaign.Result? result = null;
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask("check", maxValue: s.Ops);
                result = Campaign.runWith(
                    FuncConvert.FromFunc<History, Differential.RunResult>(history => PortCheck.run(port, options, history)),
                    arb, s.Ops, seed,
                    FuncConvert.FromAction<Differential.Totals>(totals =>
                    {
                        task.Value = Math.Min(s.Ops, totals.Ops);
                        task.Description = $"check: {totals.Ops:N0} ops, {totals.Histories:N0} histories";
                    }));
            });
        var r = result!;
        if (r.Found is { } found)
        {
            var f = found.Value.Failure;
            File.WriteAllLines(s.Repro, f.Protocol);
            AnsiConsole.MarkupLine($"[red bold]DIVERGENCE[/] at request {f.Protocol.Length} of the shrunk history (seed {seed}; rerun with --seed {seed} and the same flags)");
            Console.WriteLine(f.Report);
            AnsiConsole.MarkupLine($"minimal history: [cyan]{Markup.Escape(s.Repro)}[/] ({f.Protocol.Length} requests); `paged-kv replay < {Markup.Escape(s.Repro)}` shows the reference's replies");
            return 1;
        }

        var table = new Table().AddColumns("histories", "ops", "invalid ops", "ops/s", "port restarts");
        table.AddRow($"{r.Totals.Histories:N0}", $"{r.Totals.Ops:N0}", $"{r.Totals.Invalid:N0} ({100 * r.Totals.InvalidShare:F1}%)", $"{r.OpsPerSecond:N0}", $"{port.Starts - 1}");
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

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"check: {message}");
        return 2;
    }
}
