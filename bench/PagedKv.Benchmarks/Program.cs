using System;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// In-process toolchain: runs where only the .NET runtime is installed (the GPU machine), no SDK.
// `--quick` trades precision for time (ShortRun); ratios are read against each class's baseline.
bool quick = Array.IndexOf(args, "--quick") >= 0;
var job = (quick ? Job.ShortRun : Job.Default).WithToolchain(InProcessEmitToolchain.Instance);
var config = DefaultConfig.Instance.AddJob(job).WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(PagedKv.Benchmarks.GatherBenchmarks).Assembly)
    .Run(Array.FindAll(args, a => a != "--quick"), config);
