/// The differential runner: one history through the spec and a system under test side by side,
/// comparing after every step the outcome, the full observable state, the implementation's own
/// Validate(), the spec's invariants, and — after a failed op — that nothing changed.
module PagedKv.Verification.Differential

open System
open System.Collections.Generic
open FsCheck
open FsCheck.FSharp
open PagedKv.Spec

type Failure =
    { Step: int
      Reason: string
      /// The concrete history up to and including the failing op, in the replay protocol.
      Protocol: string list }

    member f.Report =
        let lines = f.Protocol |> List.mapi (fun i l -> sprintf "%4d  %s" i l)
        sprintf "step %d: %s\nhistory (replay protocol; paste the JSON into `replay`):\n%s" f.Step f.Reason (String.Join("\n", lines))

type RunResult =
    { Ops: int
      /// Ops that ended in a Fault (misuse), as opposed to a value or Exhausted.
      Invalid: int
      /// How often each kind of event happened (faults by case, exhausted, hits, …).
      Events: Map<string, int>
      Failure: Failure option }

/// The union case name of a value of union type 'T (an op, a fault), without reflection per call.
let private caseNamer<'T> () =
    let names = Microsoft.FSharp.Reflection.FSharpType.GetUnionCases(typeof<'T>) |> Array.map (fun c -> c.Name)
    let tag = Microsoft.FSharp.Reflection.FSharpValue.PreComputeUnionTagReader(typeof<'T>)
    fun (x: 'T) -> names[tag (box x)]

let private opName = caseNamer<Op> ()
let private faultName = caseNamer<Fault> ()

/// The kind of event an op was, judged on the spec's state before it.
let classify (w: Model.World) (op: Op) (outcome: Outcome<Reply>) =
    let s = w.Alloc
    match outcome, op with
    | Error(Fault f), _ -> "fault:" + faultName f
    | Error Exhausted, _ -> "exhausted"
    | Error(ExceedsMaxBlocks _), _ -> "exceeds-max-blocks"
    | Ok(Hit None), _ -> "hash-miss"
    | Ok(Hit(Some b)), _ -> if Allocator.refCount s b = 0 then "hash-resurrect" else "hash-hit-live"
    | Ok _, RegisterBlockHash(b, h) ->
        match Map.tryFind h s.HashToBlock, Allocator.hashOf s b with
        | Some holder, _ when holder = b -> "register-same"
        | Some _, _ -> "register-collision"
        | None, Some _ -> "register-replace"
        | None, None -> "register-new"
    | Ok _, Allocate
    | Ok _, AllocateN _ when Allocator.freeCount s > 0 && not s.HashToBlock.IsEmpty -> "allocate-with-soft-free"
    | Ok _, AcquireMany bs when bs.Length >= Limits.maxRefCount - 1 -> "acquire-bulk"
    | Ok _, SeqEnsureCapacity(q, t) when (w.Seqs[q].Blocks.Length * w.Seqs[q].BlockSize) < t -> "seq-grow"
    | Ok _, SeqRelease q when not w.Seqs[q].Blocks.IsEmpty -> "seq-release-blocks"
    | Ok(Admission(true, computed, _, _)), _ when computed > 0 -> "req-hit"
    | Ok(Admission(true, _, _, _)), _ -> "req-admit-cold"
    | Ok(Admission(false, _, _, _)), _ -> "req-refused"
    | Ok(Appending(false, _)), _ -> "req-append-refused"
    | Ok _, _ -> opName op

let private describe (o: Outcome<Reply>) = Op.outcomeJson o

/// Whether the model can run op: a prefix-cache op needs a cache (a shrunk history may have lost
/// its prefix_new; such ops are skipped, as the protocol would answer them bad_request).
let runnable (w: Model.World) (op: Op) =
    match op with
    | ReqAdmit _ | ReqAppend _ | ReqFinish _ | ReqPreempt _ -> w.Prefix.IsSome
    | _ -> true

/// An oracle for the prefix cache that knows nothing of its records: what content (salt and the
/// whole token prefix) each block was filled with, as requests append; every block an admission
/// reuses must hold exactly the request's salt and prompt prefix.
type ReuseOracle() =
    let content = Dictionary<int, uint64 * uint32 list>()
    member val Checked = 0 with get, set

    /// After a successful op: why it reused a block wrongly, if it did.
    member this.Observe(before: Model.World, op: Op, reply: Reply, after: Model.World) : string option =
        match op, reply, after.Prefix with
        | ReqAdmit(q, prompt, salt), Admission(true, computed, _, blocks), Some c ->
            [ 0 .. computed / c.BlockSize - 1 ]
            |> List.tryPick (fun i ->
                this.Checked <- this.Checked + 1
                let expected = salt, List.take ((i + 1) * c.BlockSize) prompt
                match content.TryGetValue blocks[i] with
                | true, held when held = expected -> None
                | true, (heldSalt, _) when heldSalt <> salt ->
                    Some(sprintf "cross-salt reuse: block %d (position %d) holds salt %d's content, reused under salt %d" blocks[i] i heldSalt salt)
                | true, (_, held) -> Some(sprintf "wrong reuse: block %d (position %d) holds %A, reused for %A" blocks[i] i held (snd expected))
                | false, _ -> Some(sprintf "wrong reuse: block %d (position %d) was never filled, reused for %A" blocks[i] i (snd expected)))
        | ReqAppend(q, _), Appending(true, _), Some c ->
            let r = c.Requests[q]
            let fullBefore = before.Prefix.Value.Requests[q].Tokens.Length / c.BlockSize
            for i in fullBefore .. r.Tokens.Length / c.BlockSize - 1 do
                content[r.Seq.Blocks[i]] <- (r.Salt, List.take ((i + 1) * c.BlockSize) r.Tokens)
            None
        | _ -> None

/// Runs history h; the first divergence ends the run and is reported.
let run (makeSut: MakeSut) (h: History) : RunResult =
    match Allocator.create h.Policy h.Capacity with
    | Error f -> failwithf "history capacity %d is invalid: %A" h.Capacity f
    | Ok alloc0 ->
        let sut = makeSut h.Policy h.Capacity
        // The concrete ops so far (and the device copy made to fail), rendered only for a report.
        let ran = List<Op * int option>([ New(h.Capacity, h.Policy), None ])
        let protocol () =
            [ for op, faultAt in ran -> Op.toJson op + (match faultAt with Some k -> sprintf "   // device copy %d of this op fails" k | None -> "") ]
        let events = Dictionary<string, int>()
        let count event = events[event] <- events.GetValueOrDefault(event) + 1
        let mutable model = Model.world alloc0
        let mutable invalid = 0
        let mutable failure = None
        let fail step reason = failure <- Some { Step = step; Reason = reason; Protocol = protocol () }
        let checkState step (before: Model.Snapshot option) =
            let actual = sut.Snapshot()
            let expected = Model.snapshot model
            if actual <> expected then
                fail step (sprintf "state differs\n  spec:           %A\n  implementation: %A" expected actual)
            else
                match before with
                | Some b when b <> actual -> fail step (sprintf "a failed op changed the state\n  before: %A\n  after:  %A" b actual)
                | _ ->
                    match Allocator.violations model.Alloc with
                    | [] ->
                        try sut.Validate() with e -> fail step (sprintf "Validate() threw: %s" e.Message)
                    | broken -> fail step (sprintf "the spec broke its own invariants %A" broken)
        checkState 0 None
        let oracle = ReuseOracle()
        let mutable step = 0
        let mutable rest = h.Ops
        while failure.IsNone && not rest.IsEmpty do
          let op, faultAt = History.resolveWithFault model rest.Head
          rest <- rest.Tail
          if runnable model op then
            step <- step + 1
            ran.Add((op, faultAt))
            let expected, model' = Model.step op model
            let before = match expected, faultAt with | Ok _, None -> None | _ -> Some(sut.Snapshot())
            faultAt |> Option.iter sut.ArmFault
            let actual =
                try Choice1Of3(sut.Step op) with
                | :? PagedKv.Sequences.DeviceFaultException as e when faultAt.IsSome -> Choice2Of3 e
                | e -> Choice3Of3 e
            sut.Disarm()
            match actual with
            | Choice3Of3 e -> fail step (sprintf "implementation threw %s: %s" (e.GetType().Name) e.Message)
            | Choice2Of3 _ ->
                // The injected fault ended the op: everything must be as before it.
                count "device-fault"
                checkState step before
            | Choice1Of3 actual when actual <> expected ->
                fail step (sprintf "outcome differs\n  spec:           %s\n  implementation: %s" (describe expected) (describe actual))
            | Choice1Of3 _ ->
                count (classify model op expected)
                match expected with
                | Error(Fault _) -> invalid <- invalid + 1
                | _ -> ()
                match model.Prefix, model'.Prefix with
                | Some c, Some c' when c'.Stats.Collisions > c.Stats.Collisions -> count "req-collision-met"
                | _ -> ()
                match expected with
                | Ok reply ->
                    match oracle.Observe(model, op, reply, model') with
                    | Some wrong -> fail step wrong
                    | None -> ()
                | Error _ -> ()
                model <- model'
                if failure.IsNone then checkState step (match expected with Error _ -> before | Ok _ -> None)
        if oracle.Checked > 0 then events["reuse-checked"] <- oracle.Checked
        match model.Prefix with
        | Some c ->
            events["prefix-lookups"] <- int c.Stats.Lookups
            events["prefix-collisions"] <- int c.Stats.Collisions
        | None -> ()
        { Ops = step
          Invalid = invalid
          Events = events |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
          Failure = failure }

/// Thread-safe running totals over many runs.
type Totals() =
    let gate = obj ()
    let mutable histories = 0
    let mutable ops = 0L
    let mutable invalid = 0L
    let mutable events = Map.empty<string, int64>

    member _.Add(r: RunResult) =
        lock gate (fun () ->
            histories <- histories + 1
            ops <- ops + int64 r.Ops
            invalid <- invalid + int64 r.Invalid
            for KeyValue(k, v) in r.Events do
                events <- events.Add(k, (events.TryFind k |> Option.defaultValue 0L) + int64 v))

    member _.Histories = histories
    member _.Ops = ops
    member _.Invalid = invalid
    member _.Events = events
    member _.InvalidShare = if ops = 0L then 0.0 else float invalid / float ops

/// The stateful property: history h runs without divergence. Each run is added to totals.
let property (makeSut: MakeSut) (totals: Totals) (h: History) : Property =
    let r = run makeSut h
    totals.Add r
    match r.Failure with
    | None -> Prop.ofTestable true
    | Some f -> Prop.label f.Report (Prop.ofTestable false)

/// The reference implementation (allocator only), with the history's policy.
let reference: MakeSut = fun policy capacity -> new ReferenceSut(policy, capacity) :> ISut

/// The reference implementation with sequences on `accelerator`.
let referenceOn (accelerator: ILGPU.Runtime.Accelerator) : MakeSut =
    fun policy capacity -> new ReferenceSut(policy, capacity, accelerator) :> ISut
