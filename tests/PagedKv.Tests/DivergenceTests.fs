/// Each divergence from the original (docs/divergences.md), as its shortest op sequence run
/// through the replay protocol: our typed error, and every byte of state unchanged.
module PagedKv.Tests.DivergenceTests

open System
open System.Text.Json.Nodes
open Xunit
open PagedKv.Protocol

let private run (lines: string list) =
    let session = new ReplaySession()
    let responses = lines |> List.map session.Handle
    session, responses

/// Runs `setup`, then `probe`; the probe must fail with `kind` and leave `state` as it was.
let private rejects (setup: string list) (probe: string) (kind: string) =
    let session, responses = run setup
    for r in responses do
        Assert.StartsWith("{\"ok\"", r)
    let before = session.Handle """{"op":"state"}"""
    let response = JsonNode.Parse(session.Handle probe)
    Assert.Equal(kind, response["err"].GetValue<string>())
    // A clear error: the message names what was wrong, with its numbers.
    Assert.Matches(@"\w+.*\d", response["msg"].GetValue<string>())
    Assert.Equal(before, session.Handle """{"op":"state"}""")

let private alloc1 = [ """{"op":"new","capacity":1}"""; """{"op":"allocate"}""" ]

[<Fact>]
let ``D1 double free is invalid_state`` () =
    rejects (alloc1 @ [ """{"op":"free","blocks":[0]}""" ]) """{"op":"free","blocks":[0]}""" "invalid_state"

[<Fact>]
let ``D1 a batch freeing a block more often than its refs is invalid_state, nothing freed`` () =
    rejects alloc1 """{"op":"free","blocks":[0,0]}""" "invalid_state"

[<Fact>]
let ``D2 a hash taken over by another block leaves no stale reverse entry`` () =
    let _, responses =
        run
            [ """{"op":"new","capacity":3}"""; """{"op":"allocate_n","n":2}"""
              """{"op":"register_block_hash","block":0,"hash":"7"}"""; """{"op":"register_block_hash","block":1,"hash":"7"}"""
              """{"op":"free","blocks":[0]}"""; """{"op":"allocate"}""" ]
    // Block 0 lost hash 7 to block 1, so it is a clean free block and is taken first
    // (the original still counts it as cached and answers 2).
    Assert.Equal("""{"ok":0}""", List.last responses)
    let _, responses =
        run
            [ """{"op":"new","capacity":2}"""; """{"op":"allocate_n","n":2}"""
              """{"op":"register_block_hash","block":0,"hash":"7"}"""; """{"op":"register_block_hash","block":1,"hash":"7"}"""
              """{"op":"register_block_hash","block":0,"hash":"7"}"""; """{"op":"try_acquire_by_hash","hash":"7"}""" ]
    // Re-registering 7 on block 0 takes it back (the original's stale entry makes it a no-op: 1).
    Assert.Equal("""{"ok":0}""", List.last responses)

[<Fact>]
let ``D3 acquire on a free block is invalid_state`` () =
    rejects [ """{"op":"new","capacity":1}""" ] """{"op":"acquire","block":0}""" "invalid_state"

[<Fact>]
let ``D3 acquire_many is all or nothing`` () =
    rejects [ """{"op":"new","capacity":2}"""; """{"op":"allocate"}""" ] """{"op":"acquire_many","blocks":[0,1]}""" "invalid_state"

[<Fact>]
let ``D4 register on a free block is invalid_state`` () =
    rejects [ """{"op":"new","capacity":1}""" ] """{"op":"register_block_hash","block":0,"hash":"1"}""" "invalid_state"

[<Fact>]
let ``D5 an id at or past capacity is invalid_argument`` () =
    rejects alloc1 """{"op":"free","blocks":[1]}""" "invalid_argument"
    rejects alloc1 """{"op":"ref_count","block":1}""" "invalid_argument"

[<Fact>]
let ``D6 a ref count past 65535 is invalid_state, by acquire and by hash hit`` () =
    let holds65535 = alloc1 @ [ sprintf """{"op":"acquire_many","blocks":[%s]}""" (String.Join(",", Array.create 65534 0)) ]
    rejects holds65535 """{"op":"acquire","block":0}""" "invalid_state"
    rejects (holds65535 @ [ """{"op":"register_block_hash","block":0,"hash":"3"}""" ]) """{"op":"try_acquire_by_hash","hash":"3"}""" "invalid_state"

[<Fact>]
let ``D7 negative counts and capacities are invalid_argument`` () =
    rejects alloc1 """{"op":"allocate_n","n":-1}""" "invalid_argument"
    rejects alloc1 """{"op":"new","capacity":-1}""" "invalid_argument"
    rejects alloc1 """{"op":"new","capacity":16777217}""" "invalid_argument"

[<Fact>]
let ``D8 block_size 0 is invalid_argument`` () =
    rejects alloc1 """{"op":"block_hash_chain","tokens":[1,2],"block_size":0}""" "invalid_argument"

let private seq0 = [ """{"op":"new","capacity":2}"""; """{"op":"seq_new","seq":0,"block_size":1,"max_blocks":4}""" ]

[<Fact>]
let ``D9 ensure_capacity is all or nothing: an exhausted pool gives no block and leaves the device as it was`` () =
    rejects seq0 """{"op":"seq_ensure_capacity","seq":0,"target_len":3}""" "resource_exhausted"
    rejects seq0 """{"op":"seq_ensure_capacity","seq":0,"target_len":5}""" "resource_exhausted"

[<Fact>]
let ``D10 ensure_capacity writes only new table entries: 4 bytes per new block`` () =
    let session, _ = run (seq0 @ [ """{"op":"seq_ensure_capacity","seq":0,"target_len":1}"""; """{"op":"seq_ensure_capacity","seq":0,"target_len":1}""" ])
    // The original writes all max_blocks entries on every call: 2 × 16 bytes here.
    Assert.Equal("""{"ok":{"blocks":[0],"len":0,"device_table":[0,0,0,0],"device_len":0,"bytes_written":4}}""", session.Handle """{"op":"seq_state","seq":0}""")

[<Fact>]
let ``D11 release resets the device table prefix and the device length`` () =
    let session, _ =
        run (seq0 @ [ """{"op":"seq_ensure_capacity","seq":0,"target_len":2}"""; """{"op":"seq_set_len","seq":0,"len":2}"""
                      """{"op":"seq_sync","seq":0}"""; """{"op":"seq_release","seq":0}""" ])
    // The original leaves device_table [0,1,0,0] and device_len 2 behind.
    Assert.Equal("""{"ok":{"blocks":[],"len":0,"device_table":[0,0,0,0],"device_len":0,"bytes_written":24}}""", session.Handle """{"op":"seq_state","seq":0}""")

[<Fact>]
let ``D12 a length past what the blocks hold is invalid_argument`` () =
    rejects (seq0 @ [ """{"op":"seq_ensure_capacity","seq":0,"target_len":1}""" ]) """{"op":"seq_set_len","seq":0,"len":2}""" "invalid_argument"
