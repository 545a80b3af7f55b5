using System.Collections.Generic;
using System.Linq;
using Microsoft.FSharp.Core;
using PagedKv.Verification;
using Spectre.Console;

namespace PagedKv.Cli;

/// <summary>What `check` sends, decided by the port's `hello` and the flags: only the op families
/// the port announces (`hash`, `alloc`, `seq`, `req`) and `state` only when announced. A port
/// that does not know hello (answers bad_request) gets every family its flags name.</summary>
internal sealed record Features(bool Hash, bool Alloc, int StateEvery, string Families, string? Problem)
{
    public static Features Of(FSharpOption<PortCheck.Hello>? hello, CheckCommand.Settings s)
    {
        int stateEvery = s.StateEvery ?? 64;
        if (hello is null)
        {
            AnsiConsole.MarkupLine("port: does not know hello (bad_request); the flags decide");
            return new Features(true, true, stateEvery, Names(true, true, s), null);
        }
        var said = hello.Value;
        AnsiConsole.MarkupLine($"port: protocol {said.Protocol}, profiles [[{Markup.Escape(string.Join(", ", said.Profiles))}]], features [[{Markup.Escape(string.Join(", ", said.Features))}]]");
        var has = new HashSet<string>(said.Features);
        string? problem = null;
        if (said.Profiles.Length > 0 && !said.Profiles.Contains(s.Profile))
        {
            problem = $"the port offers the profiles [{string.Join(", ", said.Profiles)}], not '{s.Profile}'";
        }
        else if (s.Seq && !has.Contains("seq"))
        {
            problem = $"--seq: the port's features [{string.Join(", ", said.Features)}] do not include seq";
        }
        else if (s.Req && !has.Contains("req"))
        {
            problem = $"--req: the port's features [{string.Join(", ", said.Features)}] do not include req";
        }
        else if (!s.Req && !s.Seq && !has.Contains("alloc"))
        {
            problem = $"the port's features [{string.Join(", ", said.Features)}] do not include alloc: check it with --req (or --seq)";
        }
        if (!has.Contains("state"))
        {
            if (s.StateEvery is > 0)
            {
                problem ??= $"--state-every {s.StateEvery}: the port's features [{string.Join(", ", said.Features)}] do not include state";
            }
            stateEvery = 0;
        }
        bool hash = has.Contains("hash"), alloc = has.Contains("alloc");
        return new Features(hash, alloc, stateEvery, Names(hash, alloc, s), problem);
    }

    private static string Names(bool hash, bool alloc, CheckCommand.Settings s) =>
        string.Join(", ", new[] { alloc ? "alloc" : null, hash ? "hash" : null, s.Seq ? "seq" : null, s.Req ? "req" : null }.Where(n => n is not null));
}
