/// Test-run sizing: PAGEDKV_SCALE multiplies every randomized workload (default 1; the mutation
/// gate uses less, long campaigns more); PAGEDKV_SEED pins the seed of the randomized campaigns.
module PagedKv.Tests.Settings

open System

let scale =
    match Environment.GetEnvironmentVariable "PAGEDKV_SCALE" with
    | null | "" -> 1.0
    | s -> Double.Parse(s, Globalization.CultureInfo.InvariantCulture)

/// Operations the default differential campaign checks (≥ 200,000 at scale 1).
let opBudget = int64 (200_000.0 * scale)

let seed =
    match Environment.GetEnvironmentVariable "PAGEDKV_SEED" with
    | null | "" -> uint64 (Random.Shared.NextInt64())
    | s -> UInt64.Parse s

/// The recorded vectors (tests/vectors/, vendored from the original; copied beside the test assembly).
let vectorsDir = IO.Path.Combine(AppContext.BaseDirectory, "vectors")

/// An FsCheck property whose number of cases scales with PAGEDKV_SCALE (at least 5), so that
/// the mutation gate's scaled-down runs are scaled down everywhere.
type ScaledPropertyAttribute(maxTest: int) as this =
    inherit FsCheck.Xunit.PropertyAttribute()
    do this.MaxTest <- max 5 (int (float maxTest * scale))
