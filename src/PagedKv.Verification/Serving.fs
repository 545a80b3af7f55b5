/// Token streams of a synthetic serving workload for the prefix-cache histories: shared system
/// prompts, multi-turn conversations that resend their history, replies that are a function of
/// the prompt (so that the next turn's prompt holds exactly the tokens the last turn decoded).
module PagedKv.Verification.Serving

/// System prompt s: 1–3 blocks and a bit, the same for every tenant that uses it.
let system (blockSize: int) (s: int) = List.init (blockSize * (1 + s % 3) + s % blockSize + 1) (fun i -> uint32 (1000 * (s + 1) + i))

/// The user's part of turn `turn` of conversation `conv`: 1 to 2 blocks' worth of tokens.
let user (blockSize: int) (conv: int) (turn: int) = List.init (1 + (7 * conv + 3 * turn) % (2 * blockSize)) (fun i -> uint32 (100_000 + 1000 * conv + 50 * turn + i))

let private fnv (tokens: uint32 list) = tokens |> List.fold (fun h t -> (h ^^^ uint64 t) * 0x100000001B3UL) 0xCBF29CE484222325UL

/// The reply decoded after `prompt`: 1–8 tokens, a function of the prompt.
let reply (prompt: uint32 list) =
    let h = fnv prompt
    List.init (1 + int (h % 8UL)) (fun i -> uint32 (200_000UL + (h + uint64 i * 7919UL) % 50_000UL))

/// The prompt of turn `turn` (turn 0: system prompt and the first user part; each later turn: the
/// previous prompt, its reply and the next user part). A negative turn is an empty prompt.
let rec prompt (blockSize: int) (system': int) (conv: int) (turn: int) : uint32 list =
    if turn < 0 then []
    elif turn = 0 then system blockSize system' @ user blockSize conv 0
    else
        let previous = prompt blockSize system' conv (turn - 1)
        previous @ reply previous @ user blockSize conv turn

/// Everything a request with this prompt computes: the prompt, then its reply.
let script (prompt: uint32 list) = prompt @ reply prompt

/// Token i of a script; past its end, filler tokens.
let tokenAt (script: uint32 list) (i: int) = if i < script.Length then script[i] else uint32 (300_000 + i % 1000)

/// Tenant t's salt (0 means no salt: the original's hash chain).
let salt (tenant: int) = 0x5A17UL + uint64 tenant
