/// `check --impl CMD`: generated histories through a port (any language, over the replay
/// protocol) with the spec predicting every reply. The model runs ahead and the checker sends up
/// to `Window` requests before it reads their replies; replies are compared as they arrive.
/// A divergence is a wrong reply, a wrong state, a line that is not protocol JSON, a crash, or
/// no reply within the timeout.
module PagedKv.Verification.PortCheck

open System
open System.Collections.Generic
open System.Text
open PagedKv.Spec

/// What the port must match. Lifo and Lru: exact block ids under that policy. Any: the port may
/// hand out any free block on allocate / allocate_n (and on a sequence's growth); the model adopts
/// its choice; everything else stays exact and free_list is compared as a set.
type Profile =
    | Lifo
    | Lru
    | Any

module Profile =
    let name p = match p with Lifo -> "lifo" | Lru -> "lru" | Any -> "any"
    let policy p = match p with Lru -> Allocator.Lru | Lifo | Any -> Allocator.LifoPreferUnhashed

type Options =
    { Profile: Profile
      /// Compare the full `state` every this many ops and at the end of each history; 0: never.
      StateEvery: int
      /// Only ops on which the original is defined (none of docs/divergences.md).
      ValidOnly: bool
      /// Sequence ops too.
      Seq: bool
      /// Prefix-cache histories (prefix_new, req_*) instead of allocator ones.
      Req: bool
      TimeoutMs: int
      /// Requests in flight at most.
      Window: int
      /// The hashing ops (block_hash, block_hash_chain): hello's feature `hash`.
      Hash: bool
      /// The raw allocator ops (allocate*, free, acquire*, register_block_hash,
      /// try_acquire_by_hash, ref_count and the counters): hello's feature `alloc`.
      Alloc: bool }

let defaults =
    { Profile = Lifo; StateEvery = 64; ValidOnly = false; Seq = false; Req = false; TimeoutMs = 5000; Window = 256; Hash = true; Alloc = true }

/// The op family hello's features gate: `hash`, `alloc`, `seq` or `req`; None for `new`.
let family (op: Op) =
    match op with
    | New _ -> None
    | BlockHash _ | BlockHashChain _ -> Some "hash"
    | Allocate | AllocateN _ | Free _ | Acquire _ | AcquireMany _ | RegisterBlockHash _ | TryAcquireByHash _
    | RefCount _ | FreeCount | Capacity | PeakInUse | HashTableSize -> Some "alloc"
    | SeqNew _ | SeqEnsureCapacity _ | SeqSetLen _ | SeqAdvanceLen _ | SeqSync _ | SeqRelease _ -> Some "seq"
    | PrefixNew _ | ReqAdmit _ | ReqAppend _ | ReqFinish _ | ReqPreempt _ -> Some "req"

/// Whether the options send op's family.
let sends (opts: Options) (op: Op) =
    match family op with
    | None -> true
    | Some "hash" -> opts.Hash
    | Some "alloc" -> opts.Alloc
    | Some "seq" -> opts.Seq
    | _ -> opts.Req

/// Whether the original is defined on `op` in world `w` and agrees with us by design: no fault
/// (double free, acquire/register on a free block, ids out of range, ref count past 65535, …),
/// no hash registered while another block holds it (D2), no ensure_capacity on a pool too short
/// for it (D9: the original keeps what it took).
let validForOriginal (w: Model.World) (op: Op) (expected: Outcome<Reply>) =
    match expected, op with
    | Error(Fault _), _ -> false
    | _, RegisterBlockHash(b, h) -> (match Map.tryFind h w.Alloc.HashToBlock with Some holder -> holder = b | None -> true)
    | Error Exhausted, SeqEnsureCapacity _ -> false
    | _ -> true

type private Expect =
    /// This outcome exactly.
    | Outcome of Outcome<Reply>
    /// Blocks the port chooses (profile Any): any `ok`, judged when the model adopts it.
    | Chosen
    /// The allocator's full state.
    | State of Allocator.Snapshot
    /// One sequence's state.
    | SeqState of int * Model.SeqSnapshot
    /// One prefix-cache request's state.
    | ReqState of int * Model.ReqSnapshot
    /// The prefix cache's counters (`prefix_stats`).
    | Stats of PrefixCache.Stats

type private Pending =
    { Step: int
      /// Index of the request among those sent in this history.
      Index: int
      Request: string
      Expect: Expect
      Before: Model.World }

/// The prefix cache's counters by their protocol names (docs/protocol.md, `prefix_stats`).
let statsFields (s: PrefixCache.Stats) =
    [ "admitted", s.Admitted; "refused", s.Refused; "appends_refused", s.AppendsRefused; "finished", s.Finished
      "preempted", s.Preempted; "prompt_tokens", s.PromptTokens; "reused_tokens", s.ReusedTokens; "lookups", s.Lookups
      "hits", s.Hits; "collisions", s.Collisions; "cross_salt_collisions", s.CrossSaltCollisions
      "registered", s.Registered; "registrations_skipped", s.RegistrationsSkipped ]

let private ints (xs: int seq) = "[" + String.Join(",", xs) + "]"

let private stateJson (s: Allocator.Snapshot) =
    let table = s.HashTable |> List.map (fun (h, b) -> sprintf """{"hash":"%d","block":%d}""" h b)
    sprintf """{"capacity":%d,"free_list":%s,"ref_counts":%s,"hash_table":[%s],"peak_in_use":%d}"""
        s.Capacity (ints s.FreeList) (ints s.RefCounts) (String.Join(",", table)) s.PeakInUse

let private reqStateJson (r: Model.ReqSnapshot) =
    sprintf """{"len":%d,"blocks":%s,"salt":"%d","device_table":%s}""" r.Len (ints r.Blocks) r.Salt (ints r.DeviceTable)

let private seqStateJson (s: Model.SeqSnapshot) =
    sprintf """{"blocks":%s,"len":%d,"device_table":%s,"device_len":%d,"bytes_written":%d}"""
        (ints s.Blocks) s.Len (ints s.DeviceTable) s.DeviceLen s.BytesWritten

/// The model's allocator state, as a port's `state` answers it (the `ok` value).
let describeAllocator (w: Model.World) = stateJson (Allocator.snapshot w.Alloc)

/// A model sequence's state, as a port's `seq_state` answers it (the `ok` value).
let describeSequence (s: Model.SeqSnapshot) = seqStateJson s

/// A model request's state, as a port's `req_state` answers it (the `ok` value).
let describeRequest (r: Model.ReqSnapshot) = reqStateJson r

/// The model's state, as a port's `state` and `seq_state` would show it.
let describeWorld (w: Model.World) =
    let snap = Model.snapshot w
    let seqs = snap.Seqs |> List.map (fun (q, s) -> sprintf "\n    seq %d: %s" q (seqStateJson s))
    stateJson snap.Alloc + String.Join("", seqs)

/// Where two allocator states differ, field by field.
let private stateDiff (profile: Profile) (expected: Allocator.Snapshot) (actual: Allocator.Snapshot) =
    let freeList (s: Allocator.Snapshot) = if profile = Any then Array.sort s.FreeList else s.FreeList
    [ if expected.Capacity <> actual.Capacity then "capacity"
      if freeList expected <> freeList actual then (if profile = Any then "free_list (as a set)" else "free_list")
      if expected.RefCounts <> actual.RefCounts then "ref_counts"
      if expected.HashTable <> List.sortBy fst actual.HashTable then "hash_table"
      if expected.PeakInUse <> actual.PeakInUse then "peak_in_use" ]

let private reqDiff (expected: Model.ReqSnapshot) (actual: PortReply.ReqState) =
    [ if expected.Blocks <> actual.Blocks then "blocks"
      if expected.Len <> actual.Len then "len"
      if actual.Salt |> Option.exists ((<>) expected.Salt) then "salt"
      if actual.DeviceTable |> Option.exists ((<>) expected.DeviceTable) then "device_table" ]

let private seqDiff (expected: Model.SeqSnapshot) (actual: PortReply.SeqState) =
    [ if expected.Blocks <> actual.Blocks then "blocks"
      if expected.Len <> actual.Len then "len"
      if actual.DeviceTable |> Option.exists ((<>) expected.DeviceTable) then "device_table"
      if actual.DeviceLen |> Option.exists ((<>) expected.DeviceLen) then "device_len"
      if actual.BytesWritten |> Option.exists ((<>) expected.BytesWritten) then "bytes_written" ]

/// Why a reply diverges, or None when it is what was expected.
let private judge (profile: Profile) (expect: Expect) (reply: PortReply.Parsed) : string option =
    match reply, expect with
    | PortReply.Malformed why, _ -> Some("the reply is not protocol JSON: " + why)
    | reply, Outcome expected -> if PortReply.agrees expected reply then None else Some "wrong reply"
    | PortReply.Ok _, Chosen -> None
    | PortReply.Err _, Chosen -> Some "wrong reply"
    | PortReply.Ok e, State expected ->
        match PortReply.stateOf e with
        | Error why -> Some("wrong state: " + why)
        | Ok actual ->
            match stateDiff profile expected actual with
            | [] -> None
            | fields -> Some("wrong state: " + String.Join(", ", fields) + " differ")
    | PortReply.Ok e, SeqState(_, expected) ->
        match PortReply.seqStateOf e with
        | Error why -> Some("wrong sequence state: " + why)
        | Ok actual ->
            match seqDiff expected actual with
            | [] -> None
            | fields -> Some("wrong sequence state: " + String.Join(", ", fields) + " differ")
    | PortReply.Ok e, ReqState(_, expected) ->
        match PortReply.reqStateOf e with
        | Error why -> Some("wrong request state: " + why)
        | Ok actual ->
            match reqDiff expected actual with
            | [] -> None
            | fields -> Some("wrong request state: " + String.Join(", ", fields) + " differ")
    | PortReply.Ok e, Stats expected ->
        let fields = statsFields expected
        match PortReply.statsOf (List.map fst fields) e with
        | Error why -> Some("wrong prefix_stats: " + why)
        | Ok actual ->
            match fields |> List.filter (fun (n, v) -> actual[n] <> v) |> List.map fst with
            | [] -> None
            | wrong -> Some("wrong prefix_stats: " + String.Join(", ", wrong) + " differ")
    | PortReply.Err kind, _ -> Some("wrong reply: state query answered with an error " + kind)

let private expectedText (expect: Expect) =
    match expect with
    | Outcome(Ok r) -> "{\"ok\":" + Op.replyJson r + "}"
    | Outcome(Error e) -> sprintf """{"err":"%s",…} (errors compare by kind)""" (Op.errorKind e)
    | Chosen -> """{"ok":…} (any legal choice of free blocks)"""
    | State s -> "{\"ok\":" + stateJson s + "}"
    | SeqState(_, s) -> "{\"ok\":" + seqStateJson s + "}"
    | ReqState(_, r) -> "{\"ok\":" + reqStateJson r + "}"
    | Stats st -> "{\"ok\":{" + String.Join(",", statsFields st |> List.map (fun (n, v) -> sprintf "\"%s\":%d" n v)) + "}}"

/// How many blocks op takes from the pool in world w when the port chooses them (profile Any).
let private chosenBlocks (w: Model.World) (op: Op) =
    match op with
    | Allocate -> 1
    | AllocateN n -> max n 0
    | SeqEnsureCapacity(q, t) ->
        match Map.tryFind q w.Seqs with
        | Some s when t >= 0 -> max 0 (Sequence.blocksFor t s - s.Blocks.Length)
        | _ -> 0
    | _ -> 0

/// The longest excerpt of a reply a report shows.
[<Literal>]
let ReportReplyChars = 4000

let private excerpt (line: string) =
    if line.Length <= ReportReplyChars then line
    else sprintf "%s… (%d characters in all)" (line.Substring(0, ReportReplyChars)) line.Length

/// One history's exchange with a port: requests sent ahead up to the window, replies read in
/// order and judged; the first divergence is kept. Pure pipeline: what to expect comes from the
/// caller (the model), whether it matches from `judge`.
type private Exchange(port: PortProcess, opts: Options) =
    let sent = List<string>()
    let pending = Queue<Pending>()

    member val Failure: Differential.Failure option = None with get, set
    /// The port crashed, hung, garbled a line or sent one too many: restart it.
    member val Broken = false with get, set
    member _.InFlight = pending.Count
    /// The step of the last request sent.
    member val LastStep = 0 with get, set
    member _.SentRequests = List.ofSeq sent

    member x.Fail (p: Pending) (why: string) (actual: string) =
        if x.Failure.IsNone then
            let reason =
                StringBuilder()
                    .AppendLine(why)
                    .AppendLine("  request:  " + p.Request)
                    .AppendLine("  expected: " + expectedText p.Expect)
                    .AppendLine("  actual:   " + actual)
                    .Append("  model state before it: " + describeWorld p.Before)
                    .ToString()
            x.Failure <- Some { Step = p.Step; Reason = reason; Protocol = sent |> Seq.take (p.Index + 1) |> List.ofSeq }

    member x.Enqueue(step: int, request: string, expect: Expect, before: Model.World) =
        sent.Add request
        x.LastStep <- step
        if not (port.Send request) then x.Broken <- true
        pending.Enqueue { Step = step; Index = sent.Count - 1; Request = request; Expect = expect; Before = before }

    /// Reads and judges the reply to the oldest request in flight: it and its reply when it is
    /// what was expected; None (the failure recorded) when it is not.
    member x.ReceiveOne() : (Pending * PortReply.Parsed) option =
        let p = pending.Dequeue()
        let broken why actual =
            x.Broken <- true
            x.Fail p why actual
            None
        match port.Receive opts.TimeoutMs with
        | Line line ->
            let reply = PortReply.parse line
            match judge opts.Profile p.Expect reply with
            | None -> Some(p, reply)
            | Some why ->
                match reply with
                | PortReply.Malformed _ -> broken why (excerpt line)
                | _ -> x.Fail p why (excerpt line); None
        | Overlong(bytes, start) ->
            broken (sprintf "a reply line of %d bytes, past the limit of %d bytes (PortLimits.MaxReplyLineBytes)" bytes PortLimits.MaxReplyLineBytes) (start + "…")
        | Closed code ->
            let stderr = port.StderrTail
            broken (sprintf "the port exited (code %s) before replying" (code |> Option.map string |> Option.defaultValue "unknown"))
                ("(no reply)" + (if stderr = "" then "" else "\n  stderr tail:\n    " + stderr.Replace("\n", "\n    ")))
        | TimedOut exited ->
            if exited then broken (sprintf "no reply within %d ms: the port's process exited, and a process it started holds its stdout open" opts.TimeoutMs) "(no reply)"
            else broken (sprintf "no reply within %d ms" opts.TimeoutMs) "(no reply)"

    /// Reads replies until at most `keep` requests are in flight; false once a divergence is found.
    member x.DrainTo(keep: int) =
        while x.Failure.IsNone && pending.Count > keep do
            x.ReceiveOne() |> ignore
        x.Failure.IsNone

    /// Ends the history: reads what is in flight, names a line the port sent unrequested, and
    /// restarts the port after a divergence, so that the next history starts on a fresh one.
    member x.Finish() =
        x.DrainTo 0 |> ignore
        while pending.Count > 0 && not x.Broken do
            let p = pending.Dequeue()
            match port.Receive opts.TimeoutMs with
            | Line _ -> ()
            | _ -> x.Broken <- true
        if not x.Broken then
            match x.Failure with
            | Some f when port.Unread 20 > 0 ->
                x.Broken <- true
                let after = f.Protocol.Length - 2
                x.Failure <-
                    Some { f with Reason = sprintf "an unrequested line after the reply to history line %d: the port sent more lines than it was sent requests; the first line that did not match is shown as actual\n%s" after f.Reason }
            | None when port.Unread 0 > 0 ->
                x.Broken <- true
                let line = match port.Receive 0 with Line l -> excerpt l | Overlong(n, _) -> sprintf "(%d bytes)" n | _ -> "?"
                x.Failure <-
                    Some { Step = x.LastStep; Reason = sprintf "an unrequested line after the last request of the history: %s" line; Protocol = List.ofSeq sent }
            | _ -> ()
        if x.Broken || x.Failure.IsSome then port.Restart()

    /// Profile Any: sends op alone and adopts the blocks the port chose; the next world, or
    /// `before` when the reply diverged.
    member x.RunChosen(step: int, op: Op, expected: Outcome<Reply>, before: Model.World, after: Model.World) : Model.World =
        if not (x.DrainTo 0) then before
        else
            let request = Op.toJson op
            x.Enqueue(step, request, (match op with SeqEnsureCapacity _ -> Outcome expected | _ -> Chosen), before)
            match x.ReceiveOne() with
            | None -> before
            | Some(p, reply) ->
                let chosen =
                    match op, reply with
                    | SeqEnsureCapacity(q, _), _ ->
                        // The sequence's new blocks are visible only in its state.
                        x.Enqueue(step, sprintf """{"op":"seq_state","seq":%d}""" q, Chosen, before)
                        match x.ReceiveOne() with
                        | Some(probe, PortReply.Ok e) ->
                            match PortReply.seqStateOf e with
                            | Ok s -> Some(List.skip (min before.Seqs[q].Blocks.Length s.Blocks.Length) s.Blocks)
                            | Error why -> x.Fail probe ("wrong sequence state: " + why) (e.GetRawText()); None
                        | _ -> None
                    | _, PortReply.Ok e ->
                        match PortReply.blocksOf e with
                        | Some bs -> Some bs
                        | None -> x.Fail p "the reply is not a block or a list of blocks" (e.GetRawText()); None
                    | _ -> None
                match chosen with
                | None -> before
                | Some chosen ->
                    let wanted = chosenBlocks before op
                    match Allocator.allocateChosen chosen before.Alloc with
                    | Error why -> x.Fail p ("an illegal choice: " + why) (String.Join(",", chosen)); before
                    | Ok _ when chosen.Length <> wanted ->
                        x.Fail p (sprintf "an allocation of %d blocks handed out %d" wanted chosen.Length) (String.Join(",", chosen)); before
                    | Ok alloc ->
                        match op with
                        | SeqEnsureCapacity(q, _) ->
                            let s = after.Seqs[q]
                            { after with Alloc = alloc; Seqs = Map.add q { s with Blocks = before.Seqs[q].Blocks @ chosen } after.Seqs }
                        | _ -> { after with Alloc = alloc }

    /// Queues the state queries: the allocator, each sequence, each request, the prefix cache's counters.
    member x.ProbeState(step: int, model: Model.World) =
        let snap = Model.snapshot model
        x.Enqueue(step, """{"op":"state"}""", State snap.Alloc, model)
        if opts.Seq then
            for q, s in snap.Seqs do
                x.Enqueue(step, sprintf """{"op":"seq_state","seq":%d}""" q, SeqState(q, s), model)
        if opts.Req then
            for q, r in snap.Requests do
                x.Enqueue(step, sprintf """{"op":"req_state","seq":%d}""" q, ReqState(q, r), model)

    /// The prefix cache's counters, when there is a cache.
    member x.ProbeStats(step: int, model: Model.World) =
        match model.Prefix with
        | Some c when opts.Req -> x.Enqueue(step, """{"op":"prefix_stats"}""", Stats c.Stats, model)
        | _ -> ()

/// How a failure that is a checker-internal error (not the port's) begins.
[<Literal>]
let InternalErrorTag = "checker-internal error: "

/// Runs history h against the port. Ops the model cannot run (a shrunk history that lost its
/// prefix_new) and ops of families the options leave out are not sent. On a divergence the port
/// is restarted, so that no reply in flight reaches the next history.
let rec run (port: PortProcess) (opts: Options) (h: History) : Differential.RunResult =
    let x = Exchange(port, opts)
    try runOn x port opts h
    with e ->
        port.Restart()
        { Ops = 0; Invalid = 0; Events = Map.empty
          Failure = Some { Step = 0; Reason = InternalErrorTag + e.ToString(); Protocol = x.SentRequests } }

and private runOn (x: Exchange) (port: PortProcess) (opts: Options) (h: History) : Differential.RunResult =
    let policy = Profile.policy opts.Profile
    let events = Dictionary<string, int>()
    let count event = events[event] <- events.GetValueOrDefault(event) + 1
    let mutable model =
        match Allocator.create policy h.Capacity with
        | Ok a -> Model.world a
        | Error _ -> Model.world (Allocator.create policy 0 |> Result.defaultWith (fun _ -> invalidOp "capacity 0 is valid"))
    let mutable invalid = 0
    let mutable ops = 0
    if port.Unread 0 > 0 then
        x.Broken <- true
        x.Failure <- Some { Step = 0; Reason = "an unrequested line arrived before this history's first request (after the previous history's last request)"; Protocol = [] }
    x.Enqueue(0, Op.toJson (New(h.Capacity, policy)), Outcome(fst (Model.step (New(h.Capacity, policy)) model)), model)
    let mutable rest = h.Ops
    while x.Failure.IsNone && not x.Broken && not rest.IsEmpty do
        let op = History.resolve model rest.Head
        rest <- rest.Tail
        if Differential.runnable model op && sends opts op then
            let expected, model' = Model.step op model
            if not (opts.ValidOnly && not (validForOriginal model op expected)) then
                ops <- ops + 1
                count (Differential.classify model op expected)
                match expected with
                | Error(Fault _) -> invalid <- invalid + 1
                | _ -> ()
                model <-
                    match opts.Profile, expected with
                    | Any, Ok _ when chosenBlocks model op > 0 -> x.RunChosen(ops, op, expected, model, model')
                    | _ ->
                        x.Enqueue(ops, Op.toJson op, Outcome expected, model)
                        model'
                if x.Failure.IsNone && opts.StateEvery > 0 && ops % opts.StateEvery = 0 then
                    x.ProbeState(ops, model)
                    x.ProbeStats(ops, model)
                if x.InFlight >= opts.Window then
                    x.DrainTo(opts.Window / 2) |> ignore
    if x.Failure.IsNone && not x.Broken then
        if opts.StateEvery > 0 then x.ProbeState(ops, model)
        x.ProbeStats(ops, model)
    x.Finish()
    { Ops = ops
      Invalid = invalid
      Events = events |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
      Failure = x.Failure }

/// The histories `check` generates for a profile: allocator and hashing ops, with sequence ops too
/// when `seq`; prefix-cache histories when `req` (with sequences beside the cache when both).
let arbitrary (profile: Profile) (seq: bool) (req: bool) : FsCheck.Arbitrary<History> =
    let policy = FsCheck.FSharp.Gen.constant (Profile.policy profile)
    let gen =
        if req && seq then History.genWithRequestsAndSequencesOf policy
        elif req then History.genWithRequestsOf policy
        elif seq then History.genWithSequencesOf policy
        else History.genFor (Profile.policy profile)
    FsCheck.FSharp.Arb.fromGenShrink (gen, History.shrink)

/// What a port says of itself in reply to {"op":"hello"}; None when it does not know hello.
type Hello =
    { Protocol: int
      Profiles: string list
      Features: string list }

/// The protocol version check speaks.
[<Literal>]
let ProtocolVersion = 1

/// A hello reply's `ok` value, judged: an object with `protocol` 1 and, when present, `profiles`
/// and `features` as arrays of strings.
let private helloOf (e: Text.Json.JsonElement) : Result<Hello, string> =
    let strings name =
        match e.TryGetProperty(name: string) with
        | false, _ -> Ok []
        | true, v when v.ValueKind = Text.Json.JsonValueKind.Array && (v.EnumerateArray() |> Seq.forall (fun x -> x.ValueKind = Text.Json.JsonValueKind.String)) ->
            Ok [ for x in v.EnumerateArray() -> x.GetString() ]
        | true, v -> Error(sprintf "its hello's %s is not an array of strings: %s" name (v.GetRawText()))
    if e.ValueKind <> Text.Json.JsonValueKind.Object then Error("its hello is not an object: " + e.GetRawText())
    else
        match e.TryGetProperty "protocol", strings "profiles", strings "features" with
        | (false, _), _, _ -> Error("its hello has no protocol: " + e.GetRawText())
        | (true, v), _, _ when v.ValueKind <> Text.Json.JsonValueKind.Number || v.GetRawText() <> string ProtocolVersion ->
            Error(sprintf "it speaks protocol %s; check speaks protocol %d" (v.GetRawText()) ProtocolVersion)
        | _, Error why, _
        | _, _, Error why -> Error why
        | _, Ok profiles, Ok features -> Ok { Protocol = ProtocolVersion; Profiles = profiles; Features = features }

let hello (port: PortProcess) (timeoutMs: int) : Result<Hello option, string> =
    if not (port.Send """{"op":"hello"}""") then Error "the port did not accept input"
    else
        match port.Receive timeoutMs with
        | Line line ->
            match PortReply.parse line with
            | PortReply.Ok e -> helloOf e |> Result.map Some
            | PortReply.Err "bad_request" -> Ok None
            | PortReply.Malformed why -> Error("its reply to hello is not protocol JSON: " + why + ": " + excerpt line)
            | _ -> Error("it answered hello with " + excerpt line)
        | Overlong(bytes, _) -> Error(sprintf "its reply to hello is a line of %d bytes, past the limit of %d" bytes PortLimits.MaxReplyLineBytes)
        | Closed code ->
            let stderr = port.StderrTail
            Error(sprintf "it exited (code %s) before answering hello%s" (code |> Option.map string |> Option.defaultValue "unknown") (if stderr = "" then "" else ": " + stderr.Replace("\n", " | ")))
        | TimedOut _ -> Error(sprintf "no reply to hello within %d ms" timeoutMs)
