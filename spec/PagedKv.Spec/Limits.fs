/// Explicit limits, same names and values as src/PagedKv/Limits.cs.
module PagedKv.Spec.Limits

/// Largest block count of an allocator.
[<Literal>]
let maxCapacity = 16777216

/// Largest reference count of a block (the original's u16).
[<Literal>]
let maxRefCount = 65535

/// Largest block table of one sequence.
[<Literal>]
let maxBlocksPerSeq = 1048576

/// Largest sequence id (replay protocol, test harness).
[<Literal>]
let maxSequenceId = 65536

/// Largest number of tokens in one block.
[<Literal>]
let maxBlockSize = 65536
