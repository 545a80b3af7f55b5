using System;
using System.CommandLine;
using PagedKv.Cli;
using PagedKv.Protocol;

var ops = new Option<long>("--ops") { Description = "Allocator operations to check (at least).", DefaultValueFactory = _ => 1_000_000 };
var seqOps = new Option<long?>("--seq-ops") { Description = "Sequence-campaign operations per accelerator (default: ops / 4)." };
var seed = new Option<ulong?>("--seed") { Description = "Campaign seed (random when absent; printed either way)." };
var accelerator = new Option<string>("--accelerator") { Description = "Accelerators for the sequence and gather campaigns: cpu, cuda, all (CUDA when present) or none.", DefaultValueFactory = _ => "cpu" };
var gatherCases = new Option<int>("--gather-cases") { Description = "Random gather-kernel cases per accelerator.", DefaultValueFactory = _ => 300 };
var verify = new Command("verify", "Differential campaigns: random histories through the reference implementation and the F# spec.")
{
    ops, seqOps, seed, accelerator, gatherCases,
};
verify.SetAction(parse => VerifyCommand.Run(parse.GetValue(ops), parse.GetValue(seqOps), parse.GetValue(seed), parse.GetValue(accelerator)!, parse.GetValue(gatherCases)));

var replay = new Command("replay", "Replay protocol: one JSON op per line on stdin, one JSON result per line on stdout (docs/protocol.md).");
replay.SetAction(_ =>
{
    using var session = new ReplaySession();
    session.Run(Console.In, Console.Out);
    return 0;
});

var benchAccelerator = new Option<string>("--accelerator") { Description = "cpu or cuda.", DefaultValueFactory = _ => "cuda" };
var poolMib = new Option<int>("--pool-mib") { Description = "Pool size in MiB.", DefaultValueFactory = _ => 1024 };
var blockSize = new Option<int>("--block-size") { DefaultValueFactory = _ => 16 };
var headDim = new Option<int>("--head-dim") { DefaultValueFactory = _ => 128 };
var dtype = new Option<string>("--dtype") { Description = "f32 or f16.", DefaultValueFactory = _ => "f32" };
var iterations = new Option<int>("--iterations") { DefaultValueFactory = _ => 20 };
var bench = new Command("bench-gather", "Paged-gather bandwidth vs a device-to-device copy of the same bytes, same run.")
{
    benchAccelerator, poolMib, blockSize, headDim, dtype, iterations,
};
bench.SetAction(parse => BenchGatherCommand.Run(parse.GetValue(benchAccelerator)!, parse.GetValue(poolMib), parse.GetValue(blockSize), parse.GetValue(headDim), parse.GetValue(dtype)!, parse.GetValue(iterations)));

var root = new RootCommand("PagedKv.Verified: the verified reference paged KV-cache block allocator.")
{
    verify, replay, bench,
};
return root.Parse(args).Invoke();
