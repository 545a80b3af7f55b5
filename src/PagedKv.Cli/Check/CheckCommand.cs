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
/// the failing history written to --repro before shrinking, the reported one after); 2: a usage
/// error, a port that cannot start or a malformed hello; 3: a checker-internal error (the history
/// that was running is printed and written to --repro).</summary>
internal static class CheckCommand
{
    public sealed record Settings(
        string Impl, long Ops, ulong? Seed, int? StateEvery, bool ValidOnly, string Profile, bool Seq, bool Req,
        int TimeoutMs, string Repro, int Window, int ShrinkTimeoutS);

    public static int Run(Settings s)
    {
        if (Validate(s) is { } usage)
        {
            return Usage(usage);
        }
        var profile = ProfileOf(s.Profile)!;
        using var port = new PortProcess(s.Impl);
        var hello = PortCheck.hello(port, s.TimeoutMs);
        if (hello.IsError)
        {
            return Usage($"the port cannot start: {hello.ErrorValue}");
        }
        var features = Features.Of(hello.ResultValue, s);
        if (features.Problem is { } problem)
        {
            return Usage(problem);
        }
        var options = new PortCheck.Options(profile, features.StateEvery, s.ValidOnly, s.Seq, s.Req, s.TimeoutMs, s.Window, features.Hash, features.Alloc);
        ulong seed = s.Seed ?? (ulong)Random.Shared.NextInt64();
        AnsiConsole.MarkupLine($"[bold]check[/] [cyan]{Markup.Escape(s.Impl)}[/]: profile {s.Profile}{(s.ValidOnly ? ", valid only" : "")}{(s.Seq ? ", with sequences" : "")}{(s.Req ? ", prefix-cache requests" : "")}, families [[{Markup.Escape(features.Families)}]], state every {features.StateEvery} ops, seed [cyan]{seed}[/]");

        PortCampaign.Result result;
        try
        {
            result = RunCampaign(port, options, s, seed);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"check: checker-internal error: {e}");
            return 3;
        }
        return result.Outcome switch
        {
            PortCampaign.Outcome.Diverged d => CheckReport.Divergence(d.Item, s.Repro, seed),
            PortCampaign.Outcome.Internal i => CheckReport.Internal(i.Item1, i.Item2, s.Repro, seed),
            _ => CheckReport.Passed(result, port.Starts - 1, seed),
        };
    }

    private static PortCampaign.Result RunCampaign(PortProcess port, PortCheck.Options options, Settings s, ulong seed)
    {
        var arb = PortCheck.arbitrary(options.Profile, s.Seq, s.Req);
        PortCampaign.Result? result = null;
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask("check", maxValue: s.Ops);
                var settings = new PortCampaign.Settings(
                    s.Ops, seed, TimeSpan.FromSeconds(s.ShrinkTimeoutS),
                    FuncConvert.FromAction<Differential.Failure>(first =>
                    {
                        // The history as first found, before shrinking: kept whatever happens next.
                        File.WriteAllLines(s.Repro, first.Protocol);
                        task.Description = "check: shrinking";
                    }),
                    FuncConvert.FromAction<Differential.Totals>(totals =>
                    {
                        task.Value = Math.Min(s.Ops, totals.Ops);
                        task.Description = $"check: {totals.Ops:N0} ops, {totals.Histories:N0} histories";
                    }));
                result = PortCampaign.run(port, options, arb, settings);
            });
        return result!;
    }

    private static PortCheck.Profile? ProfileOf(string name) => name switch
    {
        "lifo" => PortCheck.Profile.Lifo,
        "lru" => PortCheck.Profile.Lru,
        "any" => PortCheck.Profile.Any,
        _ => null,
    };

    /// <summary>Why the settings are unusable, or null; the --repro folder is checked here, before
    /// any work.</summary>
    private static string? Validate(Settings s)
    {
        if (string.IsNullOrWhiteSpace(s.Impl))
        {
            return "--impl needs the command that starts the port";
        }
        if (ProfileOf(s.Profile) is not { } profile)
        {
            return $"--profile must be lifo, lru or any, not '{s.Profile}'";
        }
        if (s.Ops < 1 || s.StateEvery is < 0 || s.TimeoutMs < 1 || s.Window < 1 || s.ShrinkTimeoutS < 1)
        {
            return "--ops, --timeout-ms, --window and --shrink-timeout must be at least 1, --state-every at least 0";
        }
        if (s.Req && profile.IsAny)
        {
            return "--req needs an exact profile (lifo or lru): a prefix cache's block ids are part of its replies";
        }
        string folder = Path.GetDirectoryName(Path.GetFullPath(s.Repro))!;
        if (!Directory.Exists(folder))
        {
            return $"--repro {s.Repro}: the folder {folder} does not exist";
        }
        if (Directory.Exists(s.Repro))
        {
            return $"--repro {s.Repro} is a folder; it takes a file name";
        }
        return null;
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"check: {message}");
        return 2;
    }
}
