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

type ErrorKind =
    | InvalidArgument
    | InvalidState

module Fault =
    let kind fault =
        match fault with
        | FreeOfFreeBlock _
        | AcquireOfFreeBlock _
        | RegisterOnFreeBlock _
        | RefCountOverflow _ -> InvalidState
        | _ -> InvalidArgument

/// An operation's result: a value, the expected refusal Exhausted (pool has too few free
/// blocks), or a Fault. Both errors leave the state unchanged.
type Error =
    | Exhausted
    | Fault of Fault

type Outcome<'a> = Result<'a, Error>
