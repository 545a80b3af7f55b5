using System;
using System.CommandLine;
using PagedKv.Cli;
using PagedKv.Cli.Replay;

var ops = new Option<long>("--ops") { Description = "Operations to check (at least).", DefaultValueFactory = _ => 1_000_000 };
var seed = new Option<ulong?>("--seed") { Description = "Campaign seed (random when absent; printed either way)." };
var verify = new Command("verify", "Differential campaign: random histories through the reference implementation and the F# spec.")
{
    ops,
    seed,
};
verify.SetAction(parse => VerifyCommand.Run(parse.GetValue(ops), parse.GetValue(seed)));

var replay = new Command("replay", "Replay protocol: one JSON op per line on stdin, one JSON result per line on stdout (docs/protocol.md).");
replay.SetAction(_ =>
{
    new ReplaySession().Run(Console.In, Console.Out);
    return 0;
});

var root = new RootCommand("PagedKv.Verified: the verified reference paged KV-cache block allocator.")
{
    verify,
    replay,
};
return root.Parse(args).Invoke();
