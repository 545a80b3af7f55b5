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

/// The repository's shared/ folder (../shared beside the checkout).
let sharedDir =
    let rec up (dir: IO.DirectoryInfo) =
        if isNull dir then failwith "no ../shared found above the test assembly"
        elif IO.Directory.Exists(IO.Path.Combine(dir.FullName, "shared", "vectors")) then IO.Path.Combine(dir.FullName, "shared")
        else up dir.Parent
    up (IO.DirectoryInfo AppContext.BaseDirectory)
