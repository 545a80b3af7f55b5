/// One sequence's paged-KV state, as a pure model: its block table and length on the host, and
/// what its two device buffers hold.
///
/// - create blockSize maxBlocks: no blocks, len 0; device table maxBlocks zeros, device len 0.
/// - ensureCapacity target: needed = ceil(target / blockSize). needed > maxBlocks → ExceedsMaxBlocks;
///   else the missing blocks come from Allocator.allocateN (Exhausted → nothing taken) and are
///   appended; only they are copied to the device (4 bytes each).
/// - setLen len: 0 ≤ len ≤ blocks × blockSize. advanceLen k = setLen (len + k).
/// - syncContextLen: device len := len (4 bytes).
/// - release: Allocator.free blocks (a Fault → nothing changes); then blocks [], len 0, and the
///   device back to a fresh sequence's (4 × blocks + 4 bytes).
///
/// Invariant: the device table is always blocks followed by zeros (deviceTable); the device
/// length is the last synced length. Every error changes nothing.
module PagedKv.Spec.Sequence

type State =
    { BlockSize: int
      MaxBlocksPerSeq: int
      Blocks: Allocator.Block list
      Len: int
      DeviceLen: int
      /// Bytes copied host → device by completed operations since creation.
      BytesWritten: int64 }

let create (blockSize: int) (maxBlocks: int) : Result<State, Fault> =
    if blockSize < 1 || blockSize > Limits.maxBlockSize then Error(BlockSizeOutOfRange blockSize)
    elif maxBlocks < 1 || maxBlocks > Limits.maxBlocksPerSeq then Error(MaxBlocksOutOfRange maxBlocks)
    else Ok { BlockSize = blockSize; MaxBlocksPerSeq = maxBlocks; Blocks = []; Len = 0; DeviceLen = 0; BytesWritten = 0L }

/// What the device block table holds.
let deviceTable (s: State) = s.Blocks @ List.replicate (s.MaxBlocksPerSeq - s.Blocks.Length) 0

let tokenCapacity (s: State) = int64 s.Blocks.Length * int64 s.BlockSize

/// Blocks of blockSize tokens needed to hold `tokens` tokens: ceil(tokens / blockSize), for any
/// layer that sizes sequences (the prefix cache too).
let blocksForTokens (blockSize: int) (tokens: int64) = int ((tokens + int64 blockSize - 1L) / int64 blockSize)

/// Blocks needed to hold target tokens: ceil(target / blockSize).
let blocksFor (target: int) (s: State) = blocksForTokens s.BlockSize (int64 target)

let ensureCapacity (target: int) (alloc: Allocator.State, s: State) : Outcome<unit> * (Allocator.State * State) =
    let needed = blocksFor target s
    let missing = needed - s.Blocks.Length
    if target < 0 then Error(Fault(LengthOutOfRange target)), (alloc, s)
    elif needed > s.MaxBlocksPerSeq then Error(ExceedsMaxBlocks needed), (alloc, s)
    elif missing <= 0 then Ok(), (alloc, s)
    else
        match Allocator.allocateN missing alloc with
        | Ok blocks, alloc' -> Ok(), (alloc', { s with Blocks = s.Blocks @ blocks; BytesWritten = s.BytesWritten + 4L * int64 missing })
        | Error e, _ -> Error e, (alloc, s)

let private setLen64 (len: int64) (s: State) : Outcome<unit> * State =
    if len < 0L || len > tokenCapacity s then Error(Fault(LengthOutOfRange(int len))), s
    else Ok(), { s with Len = int len }

let setLen (len: int) (s: State) = setLen64 (int64 len) s

/// Computed without overflow: a sum past 32 bits is out of range like any other.
let advanceLen (tokens: int) (s: State) = setLen64 (int64 s.Len + int64 tokens) s

let syncContextLen (s: State) : State =
    { s with DeviceLen = s.Len; BytesWritten = s.BytesWritten + 4L }

let release (alloc: Allocator.State, s: State) : Outcome<unit> * (Allocator.State * State) =
    match Allocator.free s.Blocks alloc with
    | Error e, _ -> Error e, (alloc, s)
    | Ok(), alloc' ->
        let written = 4L * int64 s.Blocks.Length + 4L
        Ok(), (alloc', { s with Blocks = []; Len = 0; DeviceLen = 0; BytesWritten = s.BytesWritten + written })
