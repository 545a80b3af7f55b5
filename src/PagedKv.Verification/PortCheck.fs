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
      Window: int }

let defaults = { Profile = Lifo; StateEvery = 64; ValidOnly = false; Seq = false; Req = false; TimeoutMs = 5000; Window = 256 }

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

type private Pending =
    { Step: int
      /// Index of the request among those sent in this history.
      Index: int
      Request: string
      Expect: Expect
      Before: Model.World }

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
let private judge (profile: Profile) (expect: Expect) (line: string) : string option =
    match PortReply.parse line, expect with
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
    | PortReply.Err kind, _ -> Some("wrong reply: state query answered with an error " + kind)

let private expectedText (expect: Expect) =
    match expect with
    | Outcome(Ok r) -> "{\"ok\":" + Op.replyJson r + "}"
    | Outcome(Error e) -> sprintf """{"err":"%s",…} (errors compare by kind)""" (Op.errorKind e)
    | Chosen -> """{"ok":…} (any legal choice of free blocks)"""
    | State s -> "{\"ok\":" + stateJson s + "}"
    | SeqState(_, s) -> "{\"ok\":" + seqStateJson s + "}"
    | ReqState(_, r) -> "{\"ok\":" + reqStateJson r + "}"

/// The ops that take blocks a port chooses under profile Any.
let private choosesBlocks (op: Op) =
    match op with
    | Allocate | AllocateN _ | SeqEnsureCapacity _ -> true
    | _ -> false

/// Runs history h against the port. On a divergence the port is resynchronized (the rest of
/// its in-flight replies read) or, when it crashed, hung or garbled a line, restarted.
let run (port: PortProcess) (opts: Options) (h: History) : Differential.RunResult =
    let policy = Profile.policy opts.Profile
    let h = { h with Policy = policy }
    let model0 =
        match Allocator.create policy h.Capacity with
        | Ok a -> Model.world a
        | Error f -> failwithf "history capacity %d is invalid: %A" h.Capacity f
    let sent = List<string>()
    let pending = Queue<Pending>()
    let events = Dictionary<string, int>()
    let count event = events[event] <- events.GetValueOrDefault(event) + 1
    let mutable model = model0
    let mutable invalid = 0
    let mutable ops = 0
    let mutable failure: Differential.Failure option = None
    let mutable broken = false // the port crashed, hung or garbled a line: restart it

    let fail (p: Pending) (why: string) (actual: string) =
        if failure.IsNone then
            let request = p.Request
            let reason =
                StringBuilder()
                    .AppendLine(why)
                    .AppendLine("  request:  " + request)
                    .AppendLine("  expected: " + expectedText p.Expect)
                    .AppendLine("  actual:   " + actual)
                    .Append("  model state before it: " + describeWorld p.Before)
                    .ToString()
            failure <- Some { Step = p.Step; Reason = reason; Protocol = sent |> Seq.take (p.Index + 1) |> List.ofSeq }

    /// Sends a request; returns its index among those sent.
    let send (request: string) =
        sent.Add request
        if not (port.Send request) then broken <- true
        sent.Count - 1

    let enqueue (step: int) (request: string) (expect: Expect) =
        pending.Enqueue { Step = step; Index = send request; Request = request; Expect = expect; Before = model }

    /// Reads replies until at most `keep` requests are in flight; false once a divergence is found.
    let drainTo (keep: int) (adopt: Pending -> PortReply.Parsed -> unit) =
        while failure.IsNone && pending.Count > keep do
            let p = pending.Dequeue()
            match port.Receive opts.TimeoutMs with
            | Line line ->
                match judge opts.Profile p.Expect line with
                | Some why ->
                    if why.StartsWith "the reply is not protocol JSON" then broken <- true
                    fail p why line
                | None -> adopt p (PortReply.parse line)
            | Closed code ->
                broken <- true
                let stderr = port.StderrTail
                fail p (sprintf "the port exited (code %s) before replying" (code |> Option.map string |> Option.defaultValue "unknown"))
                    ("(no reply)" + (if stderr = "" then "" else "\n  stderr tail:\n    " + stderr.Replace("\n", "\n    ")))
            | TimedOut ->
                broken <- true
                fail p (sprintf "no reply within %d ms" opts.TimeoutMs) "(no reply)"
        failure.IsNone

    let ignoreReply _ _ = ()

    let probeState (step: int) =
        let snap = Model.snapshot model
        enqueue step """{"op":"state"}""" (State snap.Alloc)
        if opts.Seq then
            for q, s in snap.Seqs do
                enqueue step (sprintf """{"op":"seq_state","seq":%d}""" q) (SeqState(q, s))
        if opts.Req then
            for q, r in snap.Requests do
                enqueue step (sprintf """{"op":"req_state","seq":%d}""" q) (ReqState(q, r))

    // The history's `new`.
    enqueue 0 (Op.toJson (New(h.Capacity, policy))) (Outcome(Ok Done))

    let mutable rest = h.Ops
    while failure.IsNone && not broken && not rest.IsEmpty do
        let op = History.resolve model rest.Head
        rest <- rest.Tail
        let expected, model' = Model.step op model
        let skip =
            not (Differential.runnable model op)
            || (opts.ValidOnly && not (validForOriginal model op expected))
            || (not opts.Seq && Op.needsDevice op)
        if not skip then
            ops <- ops + 1
            let step = ops
            let request = Op.toJson op
            count (Differential.classify model op expected)
            match expected with
            | Error(Fault _) -> invalid <- invalid + 1
            | _ -> ()
            match opts.Profile, expected with
            | Any, Ok _ when choosesBlocks op ->
                // The reply decides the next state: send it alone and adopt the port's choice.
                if drainTo 0 ignoreReply then
                    enqueue step request (match op with SeqEnsureCapacity _ -> Outcome expected | _ -> Chosen)
                    let p = pending.Peek()
                    let mutable adopted = None
                    let adopt (p: Pending) (reply: PortReply.Parsed) =
                        match op, reply with
                        | SeqEnsureCapacity(q, _), _ ->
                            // The sequence's new blocks are visible only in its state.
                            let probeRequest = sprintf """{"op":"seq_state","seq":%d}""" q
                            let probe = { Step = step; Index = send probeRequest; Request = probeRequest; Expect = Outcome(Ok Done); Before = model }
                            match port.Receive opts.TimeoutMs with
                            | Line line ->
                                match PortReply.parse line with
                                | PortReply.Ok e ->
                                    match PortReply.seqStateOf e with
                                    | Ok s ->
                                        let old = model.Seqs[q].Blocks.Length
                                        adopted <- Some(List.skip (min old s.Blocks.Length) s.Blocks, s.Blocks)
                                    | Error why -> fail probe ("wrong sequence state: " + why) line
                                | _ -> fail probe "wrong reply to seq_state" line
                            | _ ->
                                broken <- true
                                fail probe "no reply to seq_state" "(no reply)"
                        | _, PortReply.Ok e -> adopted <- PortReply.blocksOf e |> Option.map (fun bs -> bs, bs)
                        | _ -> ()
                    if drainTo 0 adopt && failure.IsNone then
                        let chosen = adopted |> Option.map fst |> Option.defaultValue []
                        let wanted =
                            match op with
                            | Allocate -> 1
                            | AllocateN n -> n
                            | SeqEnsureCapacity(q, t) -> Sequence.blocksFor t model.Seqs[q] - model.Seqs[q].Blocks.Length
                            | _ -> 0
                        match Allocator.allocateChosen chosen model.Alloc with
                        | Error why -> fail p ("an illegal choice: " + why) (String.Join(",", chosen))
                        | Ok _ when chosen.Length <> wanted -> fail p (sprintf "an allocation of %d blocks handed out %d" wanted chosen.Length) (String.Join(",", chosen))
                        | Ok alloc ->
                            model <-
                                match op with
                                | SeqEnsureCapacity(q, _) ->
                                    let s = model'.Seqs[q]
                                    { model' with Alloc = alloc; Seqs = Map.add q { s with Blocks = model.Seqs[q].Blocks @ chosen } model.Seqs }
                                | _ -> { model' with Alloc = alloc }
            | _ ->
                enqueue step request (Outcome expected)
                model <- model'
            if failure.IsNone && opts.StateEvery > 0 && ops % opts.StateEvery = 0 then
                probeState ops
            if pending.Count >= opts.Window then
                drainTo (opts.Window / 2) ignoreReply |> ignore
    if failure.IsNone && not broken && opts.StateEvery > 0 then
        probeState ops
    drainTo 0 ignoreReply |> ignore
    // Resynchronize: read what is still in flight, or start afresh.
    if not broken then
        while pending.Count > 0 && not broken do
            pending.Dequeue() |> ignore
            match port.Receive opts.TimeoutMs with
            | Line _ -> ()
            | _ -> broken <- true
    if broken then port.Restart()
    { Ops = ops
      Invalid = invalid
      Events = events |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
      Failure = failure }

/// The histories `check` generates for a profile: allocator and hashing ops, with sequence ops too
/// when `seq`; prefix-cache histories when `req`.
let arbitrary (profile: Profile) (seq: bool) (req: bool) : FsCheck.Arbitrary<History> =
    let policy = FsCheck.FSharp.Gen.constant (Profile.policy profile)
    let gen =
        if req then History.genWithRequestsOf policy
        elif seq then History.genWithSequencesOf policy
        else History.genFor (Profile.policy profile)
    FsCheck.FSharp.Arb.fromGenShrink (gen, History.shrink)

/// What a port says of itself in reply to {"op":"hello"}; None when it does not know hello.
type Hello =
    { Protocol: int
      Profiles: string list
      Features: string list }

let hello (port: PortProcess) (timeoutMs: int) : Result<Hello option, string> =
    if not (port.Send """{"op":"hello"}""") then Error "the port did not accept input"
    else
        match port.Receive timeoutMs with
        | Line line ->
            match PortReply.parse line with
            | PortReply.Ok e when e.ValueKind = Text.Json.JsonValueKind.Object ->
                let strings name =
                    match e.TryGetProperty(name: string) with
                    | true, v when v.ValueKind = Text.Json.JsonValueKind.Array -> [ for x in v.EnumerateArray() -> string x ]
                    | _ -> []
                let protocol = match e.TryGetProperty "protocol" with | true, v when v.ValueKind = Text.Json.JsonValueKind.Number -> v.GetInt32() | _ -> 0
                Ok(Some { Protocol = protocol; Profiles = strings "profiles"; Features = strings "features" })
            | PortReply.Err "bad_request" -> Ok None
            | PortReply.Malformed why -> Error("its reply to hello is not protocol JSON: " + why + ": " + line)
            | _ -> Error("it answered hello with " + line)
        | Closed code ->
            let stderr = port.StderrTail
            Error(sprintf "it exited (code %s) before answering hello%s" (code |> Option.map string |> Option.defaultValue "unknown") (if stderr = "" then "" else ": " + stderr.Replace("\n", " | ")))
        | TimedOut -> Error(sprintf "no reply to hello within %d ms" timeoutMs)
