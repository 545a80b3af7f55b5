/// What a port sent back, judged by docs/protocol.md: one line holding one JSON object, either
/// {"ok": value} or {"err": KIND, "msg": TEXT} with KIND one of the documented kinds. Anything
/// else is not a protocol line. `ok` values are compared exactly (as JSON values, not text);
/// errors by kind.
module PagedKv.Verification.PortReply

open System
open System.Globalization
open System.Text.Json
open PagedKv.Spec

/// The error kinds docs/protocol.md names.
let errorKinds = set [ "resource_exhausted"; "invalid_argument"; "invalid_state"; "device_error"; "bad_request"; "internal_error" ]

type Parsed =
    | Ok of JsonElement
    | Err of kind: string
    | Malformed of why: string

let private options = JsonDocumentOptions(MaxDepth = 64)

/// Parses one reply line; the JSON element of an `ok` outlives the line (it is cloned).
let parse (line: string) : Parsed =
    try
        use doc = JsonDocument.Parse(line, options)
        let root = doc.RootElement
        if root.ValueKind <> JsonValueKind.Object then
            Malformed "not a JSON object"
        else
            let names = [ for p in root.EnumerateObject() -> p.Name ]
            match names with
            | [ "ok" ] -> Ok(root.GetProperty("ok").Clone())
            | [ "err"; "msg" ]
            | [ "msg"; "err" ] when root.GetProperty("msg").ValueKind = JsonValueKind.String ->
                let err = root.GetProperty "err"
                if err.ValueKind = JsonValueKind.String && errorKinds.Contains(err.GetString()) then Err(err.GetString())
                else Malformed(sprintf "err is not one of the documented kinds: %s" (err.GetRawText()))
            | [ "err" ] -> Malformed "an error without msg"
            | _ -> Malformed(sprintf "fields %A: a reply has exactly ok, or err and msg" names)
    with
    | :? JsonException as e -> Malformed("not JSON: " + e.Message)
    | :? InvalidOperationException as e -> Malformed("not valid JSON text: " + e.Message)

let private int64Of (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.Number ->
        match e.TryGetInt64() with
        | true, v when e.GetRawText().IndexOfAny([| '.'; 'e'; 'E' |]) < 0 -> Some v
        | _ -> None
    | _ -> None

/// A u64 hash as the protocol answers it: a decimal string of digits only.
let hashOf (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.String ->
        let s = e.GetString()
        match UInt64.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture) with
        | true, v when s.Length > 0 && s |> Seq.forall Char.IsAsciiDigit -> Some v
        | _ -> None
    | _ -> None

/// Some of all the values when every one is Some; else None.
let private allSome (values: 'a option list) =
    if values |> List.forall Option.isSome then Some(List.map Option.get values) else None

/// A field of an object, if present (None for any other JSON value).
let private field (e: JsonElement) (name: string) =
    if e.ValueKind <> JsonValueKind.Object then None
    else
        match e.TryGetProperty name with
        | true, v -> Some v
        | _ -> None

let private intsOf (e: JsonElement) =
    if e.ValueKind <> JsonValueKind.Array then None
    else [ for x in e.EnumerateArray() -> int64Of x |> Option.map int ] |> allSome

/// Block ids of an `ok` value that is a block or a list of blocks.
let blocksOf (e: JsonElement) : int list option =
    match e.ValueKind with
    | JsonValueKind.Array -> intsOf e
    | _ -> int64Of e |> Option.map (fun b -> [ int b ])

/// Whether an `ok` value is exactly the expected reply.
let matches (expected: Reply) (e: JsonElement) =
    match expected with
    | Done
    | Hit None -> e.ValueKind = JsonValueKind.Null
    | Block b
    | Hit(Some b)
    | Count b -> int64Of e = Some(int64 b)
    | Blocks bs -> intsOf e = Some bs
    | Hash h -> hashOf e = Some h
    | Hashes hs ->
        e.ValueKind = JsonValueKind.Array
        && (let got = [ for x in e.EnumerateArray() -> hashOf x ] in got = List.map Some hs)
    | Admission _
    | Appending _ ->
        // An object: compared field by field as JSON values (order and spacing aside).
        e.ValueKind = JsonValueKind.Object
        && (let expected = JsonDocument.Parse(Op.replyJson expected).RootElement
            let fields (o: JsonElement) = [ for p in o.EnumerateObject() -> p.Name, p.Value.GetRawText().Replace(" ", "") ] |> List.sort
            fields expected = fields e)

/// Whether a reply is the expected outcome: `ok` values exactly, errors by kind.
let agrees (expected: Outcome<Reply>) (reply: Parsed) =
    match expected, reply with
    | Result.Ok r, Ok e -> matches r e
    | Result.Error err, Err kind -> Op.errorKind err = kind
    | _ -> false

/// A `state` reply as the spec's snapshot; None (with why) when a field is missing or mistyped.
let stateOf (e: JsonElement) : Result<Allocator.Snapshot, string> =
    let field = field e
    let intField name = field name |> Option.bind int64Of |> Option.map int
    let intsField name = field name |> Option.bind intsOf
    let table =
        field "hash_table"
        |> Option.bind (fun t ->
            if t.ValueKind <> JsonValueKind.Array then None
            else
                [ for x in t.EnumerateArray() ->
                      if x.ValueKind <> JsonValueKind.Object then None
                      else
                          match x.TryGetProperty "hash", x.TryGetProperty "block" with
                          | (true, h), (true, b) -> Option.map2 (fun h b -> h, int b) (hashOf h) (int64Of b)
                          | _ -> None ]
                |> allSome)
    if e.ValueKind <> JsonValueKind.Object then Error "state is not an object"
    else
        match intField "capacity", intsField "free_list", intsField "ref_counts", table, intField "peak_in_use" with
        | Some c, Some fl, Some rc, Some t, Some p -> Result.Ok { Capacity = c; FreeList = Array.ofList fl; RefCounts = Array.ofList rc; HashTable = t; PeakInUse = p; Generations = [||] }
        | _ -> Error "state lacks a field or has one of the wrong type (capacity, free_list, ref_counts, hash_table, peak_in_use)"

/// The fields of a `seq_state` reply: blocks and len always; device fields as the port reports them.
type SeqState =
    { Blocks: int list
      Len: int
      DeviceTable: int list option
      DeviceLen: int option
      BytesWritten: int64 option }

let seqStateOf (e: JsonElement) : Result<SeqState, string> =
    let field = field e
    if e.ValueKind <> JsonValueKind.Object then Error "seq_state is not an object"
    else
        match field "blocks" |> Option.bind intsOf, field "len" |> Option.bind int64Of with
        | Some blocks, Some len ->
            Result.Ok
                { Blocks = blocks
                  Len = int len
                  DeviceTable = field "device_table" |> Option.bind intsOf
                  DeviceLen = field "device_len" |> Option.bind int64Of |> Option.map int
                  BytesWritten = field "bytes_written" |> Option.bind int64Of }
        | _ -> Error "seq_state lacks blocks or len"

/// The fields of a `req_state` reply: blocks and len always; salt and device_table when reported.
type ReqState =
    { Blocks: int list
      Len: int
      Salt: uint64 option
      DeviceTable: int list option }

let reqStateOf (e: JsonElement) : Result<ReqState, string> =
    let field = field e
    if e.ValueKind <> JsonValueKind.Object then Error "req_state is not an object"
    else
        match field "blocks" |> Option.bind intsOf, field "len" |> Option.bind int64Of with
        | Some blocks, Some len ->
            Result.Ok
                { Blocks = blocks
                  Len = int len
                  Salt = field "salt" |> Option.bind hashOf
                  DeviceTable = field "device_table" |> Option.bind intsOf }
        | _ -> Error "req_state lacks blocks or len"

/// A `prefix_stats` reply: each counter by its protocol name; Error when one is missing or not an integer.
let statsOf (names: string list) (e: JsonElement) : Result<Map<string, int64>, string> =
    if e.ValueKind <> JsonValueKind.Object then Error "prefix_stats is not an object"
    else
        let values = names |> List.map (fun n -> n, field e n |> Option.bind int64Of)
        match values |> List.filter (snd >> Option.isNone) with
        | [] -> Result.Ok(values |> List.map (fun (n, v) -> n, v.Value) |> Map.ofList)
        | missing -> Error(sprintf "prefix_stats lacks or mistypes %s" (String.Join(", ", List.map fst missing)))
