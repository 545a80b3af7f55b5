/// The replay protocol (docs/protocol.md): the original's recorded traces, random histories
/// through the protocol against the spec, and malformed lines.
module PagedKv.Tests.ProtocolTests

open System
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open PagedKv.Protocol
open PagedKv.Spec
open PagedKv.Verification

/// The original's recorded histories (random ones, edges) and our golden files (every divergence
/// D1–D13, every error kind, LRU order): `{"in","out"}` lines, each replayed through the protocol
/// and, where the spec models the op, through the spec.
/// The capacity-2^24 edge trace: run as a test of its own (it allocates a pool of 2^24 blocks).
let largest = "ferrum-edge-traces/edge-capacity-max.jsonl"

let recordedFiles =
    [| Settings.vectorsDir, "ferrum-traces"; Settings.vectorsDir, "ferrum-edge-traces"; AppContext.BaseDirectory, "golden" |]
    |> Array.collect (fun (root, dir) -> Directory.GetFiles(Path.Combine(root, dir), "*.jsonl") |> Array.sort |> Array.map (fun f -> dir + "/" + Path.GetFileName f))
    |> Array.filter ((<>) largest)

let private pathOf (file: string) =
    Path.Combine((if file.StartsWith "golden/" then AppContext.BaseDirectory else Settings.vectorsDir), file)

let private node (s: string) = JsonNode.Parse s

/// A response, compared as the protocol says: `ok` values exactly (as JSON values), errors by kind (msg aside).
let private comparable (response: JsonNode) =
    let o = response.AsObject()
    match o["err"] with
    | null when o.ContainsKey "ok" -> "ok " + (match o["ok"] with null -> "null" | v -> v.ToJsonString())
    | null -> failwithf "neither ok nor err: %s" (o.ToJsonString())
    | err -> "err " + err.GetValue<string>()

let private stateJson (w: Model.World) = "{\"ok\":" + PortCheck.describeAllocator w + "}"

let private seqStateJson (w: Model.World) q =
    match (Model.snapshot w).Seqs |> List.tryFind (fst >> (=) q) with
    | None -> """{"err":"invalid_argument"}"""
    | Some(_, s) -> "{\"ok\":" + PortCheck.describeSequence s + "}"

let private statsJson (s: PrefixCache.Stats) =
    sprintf """{"ok":{"admitted":%d,"refused":%d,"appends_refused":%d,"finished":%d,"preempted":%d,"prompt_tokens":%d,"reused_tokens":%d,"lookups":%d,"hits":%d,"collisions":%d,"cross_salt_collisions":%d,"registered":%d,"registrations_skipped":%d}}"""
        s.Admitted s.Refused s.AppendsRefused s.Finished s.Preempted s.PromptTokens s.ReusedTokens s.Lookups s.Hits s.Collisions s.CrossSaltCollisions s.Registered s.RegistrationsSkipped

let recorded = recordedFiles |> Array.map (fun f -> [| box f |])

let private replayRecorded (file: string) =
    use session = new ReplaySession()
    let mutable model = None
    let mutable faultArmed = false
    let lines = File.ReadAllLines(pathOf file) |> Array.filter (fun l -> l.Trim() <> "")
    Assert.True(lines.Length >= (if file.StartsWith "ferrum-traces" then 400 else 2))
    for i, line in Array.indexed lines do
        let entry = node line
        let request = entry["in"].ToJsonString()
        let expected = comparable entry["out"]
        let response = session.Handle request
        Assert.True((expected = comparable (node response)), sprintf "%s line %d: %s → expected %s, protocol gave %s" file (i + 1) request expected response)
        let e = JsonDocument.Parse(request).RootElement
        let opName = e.GetProperty("op").GetString()
        let spec =
            match opName, Op.ofJson e, model with
            | "fail_next_copy", _, _ -> None
            | _, Some _, _ when faultArmed && expected = "err device_error" -> None // the spec has no device to fail: the op is undone
            | "state", _, Some w -> Some(stateJson w)
            | "seq_state", _, Some w -> Some(seqStateJson w (e.GetProperty("seq").GetInt32()))
            | "req_state", _, Some w ->
                let q = e.GetProperty("seq").GetInt32()
                (Model.snapshot w).Requests |> List.tryFind (fst >> (=) q) |> Option.map (fun (_, r) -> "{\"ok\":" + PortCheck.describeRequest r + "}")
            | "prefix_stats", _, Some w -> w.Prefix |> Option.map (fun c -> statsJson c.Stats)
            | _, Some op, Some w when not (Differential.runnable w op) -> None // before prefix_new: the protocol's bad_request
            | _, Some(New(c, p)), _ ->
                match Allocator.create p c with
                | Ok s -> model <- Some(Model.world s); Some(Op.outcomeJson (Ok Done))
                | Error f -> Some(Op.outcomeJson (Error(Fault f)))
            | _, Some(BlockHash _ | BlockHashChain _ as op), _ ->
                Some(Op.outcomeJson (fst (Model.step op (Model.world (Allocator.create Allocator.LifoPreferUnhashed 0 |> Result.toOption |> Option.get)))))
            | _, Some op, Some w ->
                let o, w' = Model.step op w
                model <- Some w'
                Some(Op.outcomeJson o)
            | _ -> None // before any allocator: the protocol's bad_request, which the spec does not model
        faultArmed <- opName = "fail_next_copy" && expected.StartsWith "ok"
        match spec with
        | Some answer -> Assert.True((expected = comparable (node answer)), sprintf "%s line %d: %s → expected %s, spec gave %s" file (i + 1) request expected answer)
        | None -> ()

[<Theory; MemberData(nameof recorded)>]
let ``a recorded history replays with identical outs, through the protocol and through the spec`` (file: string) = replayRecorded file

[<Fact>]
let ``largest-pool: the original's capacity-2^24 trace replays with identical outs, through the protocol and through the spec`` () = replayRecorded largest

/// Random histories over an allocator and sequences (on the CPU accelerator), rendered as
/// protocol lines, give exactly the spec's responses; `state` and every `seq_state` report
/// exactly the spec's state after every line.
[<Settings.ScaledProperty(60)>]
let ``on-device: protocol responses equal the spec's on random histories with sequences`` () =
    Prop.forAll History.arbWithSequences (fun h ->
        use session = new ReplaySession()
        let state0 = Allocator.create h.Policy h.Capacity |> Result.defaultWith (fun f -> failwithf "%A" f) |> Model.world
        session.Handle(Op.toJson (New(h.Capacity, h.Policy))) |> ignore
        h.Ops
        |> List.fold (fun (model, ok) aop ->
            let op = History.resolve model aop
            let expected, model' = Model.step op model
            let response = session.Handle(Op.toJson op)
            let same = comparable (node response) = comparable (node (Op.outcomeJson expected))
            let sameState = comparable (node (session.Handle """{"op":"state"}""")) = comparable (node (stateJson model'))
            let sameSeqs =
                [ 0 .. 3 ] |> List.forall (fun q ->
                    comparable (node (session.Handle(sprintf """{"op":"seq_state","seq":%d}""" q))) = comparable (node (seqStateJson model' q)))
            model', ok && same && sameState && sameSeqs) (state0, true)
        |> snd)

/// Random prefix-cache histories through the protocol give exactly the spec's responses; `state`,
/// every `req_state` and `prefix_stats` report exactly the spec's state after every line.
[<Settings.ScaledProperty(60)>]
let ``on-device: protocol responses equal the spec's on random prefix-cache histories`` () =
    Prop.forAll History.arbWithRequests (fun h ->
        use session = new ReplaySession()
        let state0 = Allocator.create h.Policy h.Capacity |> Result.defaultWith (fun f -> failwithf "%A" f) |> Model.world
        session.Handle(Op.toJson (New(h.Capacity, h.Policy))) |> ignore
        h.Ops
        |> List.fold (fun (model: Model.World, ok) aop ->
            let op = History.resolve model aop
            if not (Differential.runnable model op) then model, ok
            else
                let expected, model' = Model.step op model
                let response = session.Handle(Op.toJson op)
                let same = comparable (node response) = comparable (node (Op.outcomeJson expected))
                let sameState = comparable (node (session.Handle """{"op":"state"}""")) = comparable (node (stateJson model'))
                let snap = Model.snapshot model'
                let sameRequests =
                    snap.Requests |> List.forall (fun (q, r) ->
                        comparable (node (session.Handle(sprintf """{"op":"req_state","seq":%d}""" q))) = comparable (node ("{\"ok\":" + PortCheck.describeRequest r + "}")))
                let sameStats =
                    match snap.PrefixStats with
                    | Some stats -> comparable (node (session.Handle """{"op":"prefix_stats"}""")) = comparable (node (statsJson stats))
                    | None -> true
                if not (same && sameState && sameRequests && sameStats) then
                    failwithf "%s → %s (spec %s); state %b, requests %b, stats %b" (Op.toJson op) response (Op.outcomeJson expected) sameState sameRequests sameStats
                model', ok) (state0, true)
        |> snd)

let malformed =
    [ "", "not json"
      "{", "truncated JSON"
      "[1,2]", "not an object"
      """{"capacity":3}""", "no op"
      """{"op":7}""", "op not a string"
      """{"op":"explode"}""", "unknown op"
      """{"op":"allocate_n"}""", "missing field"
      """{"op":"allocate_n","n":"2"}""", "mistyped field"
      """{"op":"allocate_n","n":1.5}""", "fractional integer"
      """{"op":"free","blocks":[0,"1"]}""", "mistyped array item"
      """{"op":"free","blocks":0}""", "scalar for an array"
      """{"op":"allocate","extra":1}""", "unknown field"
      """{"op":"allocate","op":"allocate"}""", "duplicate field"
      """{"op":"register_block_hash","block":0,"hash":"12x"}""", "bad decimal hash"
      """{"op":"register_block_hash","block":0,"hash":"0xZZ"}""", "bad hex hash"
      """{"op":"register_block_hash","block":0,"hash":-1}""", "negative hash"
      """{"op":"register_block_hash","block":0,"hash":"18446744073709551616"}""", "hash past u64"
      """{"op":"block_hash","parent":0,"tokens":[4294967296]}""", "token past u32"
      """{"op":"block_hash","parent":0,"tokens":[-1]}""", "negative token" ]
    |> List.map (fun (line, why) -> [| box line; box why |])

[<Theory; MemberData(nameof malformed)>]
let ``a malformed line is a bad_request and changes nothing`` (line: string) (why: string) =
    use session = new ReplaySession()
    for setup in [ """{"op":"new","capacity":4}"""; """{"op":"allocate_n","n":2}"""; """{"op":"register_block_hash","block":0,"hash":"5"}""" ] do
        Assert.StartsWith("{\"ok\"", session.Handle setup)
    let before = session.Handle """{"op":"state"}"""
    let response = node (session.Handle line)
    Assert.True(("bad_request" = response["err"].GetValue<string>()), why)
    Assert.False(String.IsNullOrWhiteSpace(response["msg"].GetValue<string>()))
    Assert.Equal(before, session.Handle """{"op":"state"}""")

[<Fact>]
let ``ops before new are bad_request; hashing needs no allocator`` () =
    use session = new ReplaySession()
    for op in [ "allocate"; "free_count"; "capacity"; "peak_in_use"; "hash_table_size"; "state" ] do
        Assert.Contains("\"bad_request\"", session.Handle(sprintf """{"op":"%s"}""" op))
    Assert.Contains("\"bad_request\"", session.Handle """{"op":"seq_new","seq":0,"block_size":4,"max_blocks":4}""")
    Assert.Contains("\"bad_request\"", session.Handle """{"op":"seq_state","seq":0}""")
    Assert.Equal("""{"ok":"2435999049025295583"}""", session.Handle """{"op":"block_hash","parent":"0x0","tokens":[0]}""")
    Assert.Equal("""{"ok":"2435999049025295583"}""", session.Handle """{"op":"block_hash","parent":0,"tokens":[0]}""")

[<Fact>]
let ``hashes are accepted as decimal string, hex string and integer; answered as decimal strings`` () =
    use session = new ReplaySession()
    session.Handle """{"op":"new","capacity":2}""" |> ignore
    session.Handle """{"op":"allocate"}""" |> ignore
    for form in [ "\"255\""; "\"0xff\""; "\"0XFF\""; "255" ] do
        Assert.Equal("""{"ok":null}""", session.Handle(sprintf """{"op":"register_block_hash","block":0,"hash":%s}""" form))
        Assert.Equal("""{"ok":0}""", session.Handle(sprintf """{"op":"try_acquire_by_hash","hash":%s}""" form))
    Assert.Contains("\"hash\":\"255\"", session.Handle """{"op":"state"}""")
    Assert.Equal("""{"ok":["13609732994949778573"]}""", session.Handle """{"op":"block_hash_chain","tokens":[1,2,3,4,5],"block_size":4}""")

[<Theory>]
[<InlineData("""{"op":"new","capacity":-1}""", "invalid_argument")>]
[<InlineData("""{"op":"new","capacity":16777217}""", "invalid_argument")>]
[<InlineData("""{"op":"new","capacity":99999999999}""", "invalid_argument")>]
[<InlineData("""{"op":"allocate_n","n":-1}""", "invalid_argument")>]
[<InlineData("""{"op":"allocate_n","n":99999999999}""", "resource_exhausted")>]
[<InlineData("""{"op":"free","blocks":[3,99999999999]}""", "invalid_argument")>]
[<InlineData("""{"op":"acquire","block":-5}""", "invalid_argument")>]
[<InlineData("""{"op":"ref_count","block":3}""", "invalid_argument")>]
[<InlineData("""{"op":"free","blocks":[1]}""", "invalid_state")>]
[<InlineData("""{"op":"free","blocks":[0,0]}""", "invalid_state")>]
[<InlineData("""{"op":"acquire","block":1}""", "invalid_state")>]
[<InlineData("""{"op":"register_block_hash","block":1,"hash":"1"}""", "invalid_state")>]
[<InlineData("""{"op":"acquire_many","blocks":[0,1]}""", "invalid_state")>]
[<InlineData("""{"op":"block_hash_chain","tokens":[1],"block_size":0}""", "invalid_argument")>]
[<InlineData("""{"op":"block_hash_chain","tokens":[1],"block_size":-3}""", "invalid_argument")>]
[<InlineData("""{"op":"block_hash_chain","tokens":[1],"block_size":99999999999}""", "invalid_argument")>]
[<InlineData("""{"op":"seq_sync","seq":0}""", "invalid_argument")>]
[<InlineData("""{"op":"seq_new","seq":-1,"block_size":4,"max_blocks":4}""", "invalid_argument")>]
[<InlineData("""{"op":"seq_new","seq":0,"block_size":0,"max_blocks":4}""", "invalid_argument")>]
[<InlineData("""{"op":"seq_new","seq":0,"block_size":4,"max_blocks":0}""", "invalid_argument")>]
[<InlineData("""{"op":"seq_new","seq":0,"block_size":4,"max_blocks":99999999999}""", "invalid_argument")>]
let ``misuse gets its error kind and changes nothing`` (line: string) (kind: string) =
    use session = new ReplaySession()
    session.Handle """{"op":"new","capacity":3}""" |> ignore
    session.Handle """{"op":"allocate"}""" |> ignore
    let before = session.Handle """{"op":"state"}"""
    let response = node (session.Handle line)
    Assert.Equal(kind, response["err"].GetValue<string>())
    Assert.Equal(before, session.Handle """{"op":"state"}""")

[<Fact>]
let ``replay reads lines and writes one response per non-blank line`` () =
    let input = new StringReader("{\"op\":\"new\",\"capacity\":1}\n\n{\"op\":\"allocate\"}\n{\"op\":\"allocate\"}\n")
    let output = new StringWriter()
    (new ReplaySession()).Run(input, output)
    let lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
    Assert.Equal<string[]>([| """{"ok":null}"""; """{"ok":0}"""; """{"err":"resource_exhausted","msg":"paged KV pool exhausted (capacity=1 blocks, all in use)"}""" |], lines)

[<Fact>]
let ``on-device: a rejected fail_next_copy disarms an earlier one; an accepted one arms the next request only`` () =
    use session = new ReplaySession()
    let kind (line: string) =
        let r = node (session.Handle line)
        match r["err"] with
        | null -> "ok"
        | e -> e.GetValue<string>()
    Assert.Equal("ok", kind """{"op":"new","capacity":8}""")
    Assert.Equal("ok", kind """{"op":"seq_new","seq":0,"block_size":2,"max_blocks":4}""")
    Assert.Equal("ok", kind """{"op":"fail_next_copy","copy":0}""")
    Assert.Equal("invalid_argument", kind """{"op":"fail_next_copy","copy":-1}""")
    Assert.Equal("ok", kind """{"op":"seq_ensure_capacity","seq":0,"target_len":2}""") // no arm left
    Assert.Equal("ok", kind """{"op":"fail_next_copy","copy":0}""")
    Assert.Equal("device_error", kind """{"op":"seq_ensure_capacity","seq":0,"target_len":4}""")
    Assert.Equal("ok", kind """{"op":"seq_ensure_capacity","seq":0,"target_len":4}""") // the arm was used up

[<Fact>]
let ``replay answers a line past the limit bad_request without holding it, and goes on`` () =
    let limit = 100
    let overlong = String('x', 10 * limit + 7) // no JSON at all: never parsed
    let input = new StringReader(sprintf "{\"op\":\"new\",\"capacity\":2}\n%s\n{\"op\":\"allocate\"}\r\n%s" overlong overlong)
    let output = new StringWriter()
    (new ReplaySession()).Run(input, output, limit)
    let lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.map (fun l -> l.TrimEnd '\r')
    Assert.Equal(4, lines.Length)
    Assert.Equal("""{"ok":null}""", lines[0])
    Assert.Equal("""{"err":"bad_request","msg":"a request line of 1007 characters is past the limit of 100 (ProtocolLimits.MaxRequestLineChars); skipped"}""", lines[1])
    Assert.Equal("""{"ok":0}""", lines[2]) // the session went on; a \r\n line reads as its request
    Assert.StartsWith("""{"err":"bad_request","msg":"a request line of 1007""", lines[3]) // a last line without a newline too
    Assert.Equal(1 <<< 26, ProtocolLimits.MaxRequestLineChars)
