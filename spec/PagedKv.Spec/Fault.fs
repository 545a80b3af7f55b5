namespace PagedKv.Spec

/// Every misuse the system rejects, with the offending value. Same names as src/PagedKv/Errors.cs.
/// InvalidArgument: a value no state could accept. InvalidState: a value this state forbids.
type Fault =
    | CapacityOutOfRange of capacity: int
    | CountOutOfRange of n: int
    | BlockOutOfRange of block: int
    | BlockSizeOutOfRange of blockSize: int
    | FreeOfFreeBlock of block: int
    | AcquireOfFreeBlock of block: int
    | RegisterOnFreeBlock of block: int
    | RefCountOverflow of block: int
    | MaxBlocksOutOfRange of maxBlocks: int
    | LengthOutOfRange of length: int
    | UnknownSequence of seq: int
    | SequenceExists of seq: int
    | RequestBlockLost of block: int

type ErrorKind =
    | InvalidArgument
    | InvalidState

module Fault =
    let kind fault =
        match fault with
        | FreeOfFreeBlock _
        | AcquireOfFreeBlock _
        | RegisterOnFreeBlock _
        | RefCountOverflow _
        | SequenceExists _
        | RequestBlockLost _ -> InvalidState
        | _ -> InvalidArgument

/// An operation's result: a value, an expected refusal — Exhausted (the pool has too few free
/// blocks) or ExceedsMaxBlocks (a sequence would need more blocks than it may have) — or a
/// Fault. Every error leaves the state unchanged.
type Error =
    | Exhausted
    | ExceedsMaxBlocks of needed: int
    | Fault of Fault

type Outcome<'a> = Result<'a, Error>
