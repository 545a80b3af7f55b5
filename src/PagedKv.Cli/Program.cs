using System;
using System.CommandLine;
using PagedKv.Cli;
using PagedKv.Protocol;

var ops = new Option<long>("--ops") { Description = "Allocator operations to check (at least).", DefaultValueFactory = _ => 1_000_000 };
var seqOps = new Option<long?>("--seq-ops") { Description = "Operations of the sequence campaign and of the prefix-cache campaign, each, per accelerator (default: ops / 4)." };
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
    session.Run(new StreamTextReader(Console.OpenStandardInput()), Console.Out);
    return 0;
});

var impl = new Option<string>("--impl") { Description = "Shell command that starts the port (it speaks the replay protocol on stdin/stdout).", Required = true };
var checkOps = new Option<long>("--ops") { Description = "Operations to check (at least).", DefaultValueFactory = _ => 100_000 };
var checkSeed = new Option<ulong?>("--seed") { Description = "Campaign seed (random when absent; printed either way)." };
var stateEvery = new Option<int?>("--state-every") { Description = "Compare the full state every K ops and at the end of each history (default 64; 0: never, for ports without `state`)." };
var validOnly = new Option<bool>("--valid-only") { Description = "Only histories on which the original is defined (none of docs/divergences.md)." };
var profile = new Option<string>("--profile") { Description = "lifo (the original's block ids), lru, or any (any free block on allocate).", DefaultValueFactory = _ => "lifo" };
var withSeq = new Option<bool>("--seq") { Description = "Sequence ops (seq_*) too." };
var withReq = new Option<bool>("--req") { Description = "Prefix-cache histories (prefix_new, req_*): admission, reuse, refusals, preemption." };
var timeoutMs = new Option<int>("--timeout-ms") { Description = "Longest wait for one reply.", DefaultValueFactory = _ => 5000 };
var repro = new Option<string>("--repro") { Description = "Where the minimal diverging history is written (request lines).", DefaultValueFactory = _ => "check-repro.jsonl" };
var window = new Option<int>("--window") { Description = "Requests in flight at most.", DefaultValueFactory = _ => 256 };
var shrinkTimeout = new Option<int>("--shrink-timeout") { Description = "Seconds shrinking may take; then the smallest history so far is reported as such.", DefaultValueFactory = _ => 180 };
var check = new Command("check", "Check a port against the spec: generated histories over the replay protocol, shrunk to a minimal divergence.")
{
    impl, checkOps, checkSeed, stateEvery, validOnly, profile, withSeq, withReq, timeoutMs, repro, window, shrinkTimeout,
};
check.SetAction(parse => CheckCommand.Run(new CheckCommand.Settings(
    parse.GetValue(impl)!, parse.GetValue(checkOps), parse.GetValue(checkSeed), parse.GetValue(stateEvery), parse.GetValue(validOnly),
    parse.GetValue(profile)!, parse.GetValue(withSeq), parse.GetValue(withReq), parse.GetValue(timeoutMs), parse.GetValue(repro)!, parse.GetValue(window), parse.GetValue(shrinkTimeout))));

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

var workload = new Argument<string>("workload") { Description = "alloc_free_nohash, alloc_cached, hit_deep or trace." };
var size = new Argument<string>("n") { Description = "Capacity N in blocks (trace: the JSONL file)." };
var benchPolicy = new Option<string>("--policy") { Description = "Free-order policy: lifo or lru.", DefaultValueFactory = _ => "lifo" };
var allocatorBench = new Command("bench", "Time an allocator workload: one JSON line {workload,n,policy,iters,ns_per_op,bytes_per_op}, best of 5 repetitions of >= 0.2 s.")
{
    workload, size, benchPolicy,
};
allocatorBench.SetAction(parse => PagedKv.Cli.Bench.BenchCommand.Run(parse.GetValue(workload)!, parse.GetValue(size)!, parse.GetValue(benchPolicy)!));

var simBlocks = new Option<string>("--blocks") { Description = "Pool size in blocks, or a sweep: 256,512,1024.", DefaultValueFactory = _ => "256,512,1024,2048,4096" };
var simBlockSize = new Option<int>("--block-size") { Description = "Tokens per block.", DefaultValueFactory = _ => 16 };
var simPolicy = new Option<string>("--policy") { Description = "lifo, lru or all.", DefaultValueFactory = _ => "all" };
var simRequests = new Option<int>("--requests") { Description = "Synthetic requests.", DefaultValueFactory = _ => 2000 };
var simTenants = new Option<int>("--tenants") { Description = "Synthetic tenants (they share 3 system prompts).", DefaultValueFactory = _ => 4 };
var simRate = new Option<double>("--rate") { Description = "Synthetic arrivals per second (Poisson).", DefaultValueFactory = _ => 20 };
var simSeed = new Option<ulong?>("--seed") { Description = "Workload seed (random when absent; printed either way)." };
var noSalt = new Option<bool>("--no-salt") { Description = "Tenants share the cache (no per-tenant salt)." };
var simTrace = new Option<string?>("--trace") { Description = "JSONL arrivals {\"t\":s,\"tenant\":\"…\",\"tokens\":[…],\"output_len\":n} instead of the synthetic workload." };
var plot = new Option<string?>("--plot") { Description = "Write a chart of hit rate against pool size per policy (SVG)." };
var json = new Option<bool>("--json") { Description = "One JSON object per (policy, pool size) instead of the table." };
var simMaxBlocks = new Option<int>("--max-blocks-per-seq") { Description = "Longest block table of one request.", DefaultValueFactory = _ => 4096 };
var simCollide = new Option<int>("--collide") { Description = "Reduce every block hash to one of K values, so lookups meet collisions all the time (0: the original's hash)." };
var simulate = new Command("simulate", "Size a pool and pick a policy: a serving workload through the prefix cache, per policy and pool size.")
{
    simBlocks, simBlockSize, simPolicy, simRequests, simTenants, simRate, simSeed, noSalt, simTrace, plot, json, simMaxBlocks, simCollide,
};
simulate.SetAction(parse => PagedKv.Cli.Simulate.SimulateCommand.Run(new PagedKv.Cli.Simulate.SimulateCommand.Settings(
    parse.GetValue(simBlocks)!, parse.GetValue(simBlockSize), parse.GetValue(simPolicy)!, parse.GetValue(simRequests), parse.GetValue(simTenants),
    parse.GetValue(simRate), parse.GetValue(simSeed), parse.GetValue(noSalt), parse.GetValue(simTrace), parse.GetValue(plot), parse.GetValue(json),
    parse.GetValue(simMaxBlocks), parse.GetValue(simCollide))));

var root = new RootCommand("PagedKv.Verified: the verified reference paged KV-cache block allocator.")
{
    verify, replay, check, simulate, allocatorBench, bench,
};
// An option that does not parse is a usage error: exit 2 with the reason, as for every other usage
// error (exit 1 means a divergence, a wrong reuse or a failed check).
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    foreach (var error in parsed.Errors)
    {
        Console.Error.WriteLine($"paged-kv: {error.Message}");
    }
    return 2;
}
return parsed.Invoke();
