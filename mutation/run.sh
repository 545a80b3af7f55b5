#!/usr/bin/env bash
# Mutation gate: Stryker.NET mutates the reference implementation (src/PagedKv: allocator,
# hashing, sequences — not the kernels, not the CLI) and runs the property suite against every
# mutant at PAGEDKV_SCALE (default 0.05: enough to kill the killable mutants, fast enough for CI).
# Fails below the break threshold (stryker-config.json) or when a mutant survives that
# mutation/equivalent-mutants.md does not list. Reports: artifacts/mutation/reports/.
set -uo pipefail
cd "$(dirname "$0")/.."
export PAGEDKV_SCALE=${PAGEDKV_SCALE:-0.05}
# A fixed campaign seed (not the test run's), so that a surviving mutant reproduces.
export PAGEDKV_SEED=${PAGEDKV_MUTATION_SEED:-20261127}
out=artifacts/mutation
rm -rf "$out" && mkdir -p "$out"
dotnet tool restore >/dev/null || exit 1
start=$(date +%s)
dotnet stryker --skip-version-check --config-file stryker-config.json --output "$out" > "$out/stryker.log" 2>&1
stryker_status=$?
grep -E "INF\]|WRN\]|ERR\]|mutation score" "$out/stryker.log" | tail -n 25
echo "mutation: $(( $(date +%s) - start ))s wall (PAGEDKV_SCALE=$PAGEDKV_SCALE, PAGEDKV_SEED=$PAGEDKV_SEED)"
report="$out/reports/mutation-report.json"
[ -f "$report" ] || { echo "mutation gate FAILED: no report (stryker exit $stryker_status)"; exit 1; }
dotnet fsi mutation/summary.fsx "$report" mutation/equivalent-mutants.md || exit 1
[ "$stryker_status" -eq 0 ] || { echo "mutation gate FAILED: score below the break threshold"; exit 1; }
echo "mutation gate passed"
