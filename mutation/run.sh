#!/usr/bin/env bash
# Mutation gate: Stryker.NET mutates the reference implementation (src/PagedKv: allocator,
# hashing, sequences, prefix cache — not the kernels, not the CLI; Release build) and runs the
# suite against every mutant at PAGEDKV_SCALE (default 0.05) with a fixed campaign seed.
# Two runs, so that each mutant runs only the tests that can tell: the allocator and hashing
# against the tests that need no device, then sequences and the prefix cache against all (both
# leave out the tests that check the suite itself or unmutated layers: stryker-config.json).
# Fails below 90 % over both runs, or when a mutant survives that mutation/equivalent-mutants.md
# does not list. Reports: artifacts/mutation/{core,device}/reports/.
set -uo pipefail
cd "$(dirname "$0")/.."
export PAGEDKV_SCALE=${PAGEDKV_SCALE:-0.05}
# A fixed campaign seed (not the test run's), so that a surviving mutant reproduces.
export PAGEDKV_SEED=${PAGEDKV_MUTATION_SEED:-20261127}
# Every mutant runs in a fresh test host: tiered PGO's instrumentation costs more than it saves there.
export DOTNET_TieredPGO=0
out=artifacts/mutation
rm -rf "$out" && mkdir -p "$out"
dotnet tool restore >/dev/null || exit 1
base=$(python3 -c 'import json; print(json.load(open("stryker-config.json"))["stryker-config"]["test-case-filter"])')
# Tests that drive sequences or prefix-cache requests on a device, and the 2^24-block pool.
device_free="FullyQualifiedName!~SequenceTests&FullyQualifiedName!~PrefixTests&FullyQualifiedName!~on-device&FullyQualifiedName!~largest-pool"
status=0
start=$(date +%s)
run() { # name, test filter, mutate globs...
  local name=$1 filter=$2; shift 2
  local args=()
  for glob in "$@"; do args+=(--mutate "$glob"); done
  local t0; t0=$(date +%s)
  dotnet stryker --skip-version-check --config-file stryker-config.json --output "$out/$name" \
    --test-case-filter "$filter" "${args[@]}" > "$out/$name.log" 2>&1 || status=1
  grep -E "mutants will be tested|mutation score" "$out/$name.log" | tail -n 3
  echo "mutation ($name): $(( $(date +%s) - t0 ))s wall"
}
run core "$base&$device_free" "**/Allocation/**/*.cs" "**/Hashing/**/*.cs" "**/Errors.cs" "**/Limits.cs"
run device "$base" "**/Sequences/**/*.cs" "**/Prefix/**/*.cs"
echo "mutation: $(( $(date +%s) - start ))s wall (PAGEDKV_SCALE=$PAGEDKV_SCALE, PAGEDKV_SEED=$PAGEDKV_SEED)"
reports=()
for name in core device; do
  report="$out/$name/reports/mutation-report.json"
  [ -f "$report" ] || { echo "mutation gate FAILED: no report for the $name run (see $out/$name.log)"; exit 1; }
  reports+=("$report")
done
dotnet fsi mutation/summary.fsx mutation/equivalent-mutants.md 90 "${reports[@]}" || exit 1
echo "mutation gate passed"
