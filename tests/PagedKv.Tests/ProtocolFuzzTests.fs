/// The replay protocol under hostile input: valid requests mutated at the JSON level (escapes and
/// lone surrogates, control characters, huge and negative numbers, -0, floats, duplicated and
/// unknown keys, deep nesting, truncation). The session never ends, every reply is one
/// documented JSON line, and a request that fails changes nothing.
module PagedKv.Tests.ProtocolFuzzTests

open System
open System.Text
open System.Text.Json
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open PagedKv.Protocol
open PagedKv.Verification

/// Requests of every op, valid in the setup below (most of them), as templates to mutate.
let private templates =
    [| """{"op":"new","capacity":8}"""; """{"op":"new","capacity":8,"policy":"lru"}"""; """{"op":"allocate"}"""
       """{"op":"allocate_n","n":2}"""; """{"op":"free","blocks":[0,1]}"""; """{"op":"acquire","block":2}"""
       """{"op":"acquire_many","blocks":[2,2]}"""; """{"op":"register_block_hash","block":2,"hash":"0x2a"}"""
       """{"op":"try_acquire_by_hash","hash":"42"}"""; """{"op":"ref_count","block":2}"""; """{"op":"free_count"}"""
       """{"op":"capacity"}"""; """{"op":"peak_in_use"}"""; """{"op":"hash_table_size"}"""; """{"op":"state"}"""
       """{"op":"hello"}"""; """{"op":"block_hash","parent":"7","tokens":[1,2,3]}"""
       """{"op":"block_hash_chain","tokens":[1,2,3,4],"block_size":2}"""; """{"op":"seq_new","seq":1,"block_size":2,"max_blocks":4}"""
       """{"op":"seq_ensure_capacity","seq":0,"target_len":3}"""; """{"op":"seq_set_len","seq":0,"len":1}"""
       """{"op":"seq_advance_len","seq":0,"tokens":1}"""; """{"op":"seq_sync","seq":0}"""; """{"op":"seq_release","seq":0}"""
       """{"op":"seq_state","seq":0}"""; """{"op":"fail_next_copy","copy":0}""" |]

/// Replacements for a JSON number.
let private numbers =
    [| "100000000000000000000000000000"; "-100000000000000000000000000000"; "-0"; "1.5"; "1e3"; "1E-2"; "-1"; "2147483648"
       "9223372036854775808"; "18446744073709551616"; "\"3\""; "true"; "null"; "[]"; "{}"; "0.0"; "00"; "+1"; "NaN"; "Infinity" |]

/// Text put inside a JSON string.
let private stringBits =
    [| "\\ud800"; "\\udc00x"; "\\u0000"; "\u0001"; "\t"; "\\uD83D\\uDE00"; "\\x"; "\\"; "é"; "\u00a0"; "\\n"; "0x"; " "; "\\u"; "\\uZZZZ" |]

type Mutation =
    | ReplaceNumber of at: int * by: int
    | IntoString of at: int * bit: int
    | DuplicateKey
    | UnknownKey
    | Nest of depth: int
    | Truncate of at: int
    | InsertChar of at: int * c: char
    | WholeGarbage of int

let private mutate (line: string) (m: Mutation) =
    let positions (pred: int -> bool) = [ for i in 0 .. line.Length - 1 do if pred i then i ]
    let pick (xs: int list) k = if xs.IsEmpty then None else Some xs[k % xs.Length]
    match m with
    | ReplaceNumber(at, by) ->
        // The start of a number: a digit or '-' after ':', ',' or '['.
        let starts = positions (fun i -> (Char.IsAsciiDigit line[i] || line[i] = '-') && i > 0 && ":,[".Contains line[i - 1])
        match pick starts at with
        | Some i ->
            let j = Seq.tryFindIndex (fun c -> not (Char.IsAsciiDigit c || c = '-')) (line.Substring(i + 1)) |> Option.map ((+) (i + 1)) |> Option.defaultValue line.Length
            line.Substring(0, i) + numbers[by % numbers.Length] + line.Substring j
        | None -> line
    | IntoString(at, bit) ->
        match pick (positions (fun i -> line[i] = '"')) at with
        | Some i -> line.Insert(i + 1, stringBits[bit % stringBits.Length])
        | None -> line
    | DuplicateKey ->
        match line.IndexOf(',') with
        | i when i > 1 && line.EndsWith "}" -> line.Substring(0, line.Length - 1) + "," + line.Substring(1, i - 1) + "}"
        | _ -> line.Replace("}", ",\"op\":\"state\"}")
    | UnknownKey when line.EndsWith "}" -> line.Substring(0, line.Length - 1) + ",\"extra\":1}"
    | UnknownKey -> line + ",\"extra\":1}"
    | Nest depth ->
        match line.LastIndexOf(':') with
        | i when i >= 0 && i < line.Length - 2 && line.EndsWith "}" ->
            line.Substring(0, i + 1) + String('[', depth) + line.Substring(i + 1, line.Length - i - 2) + String(']', depth) + "}"
        | _ -> String('[', depth) + line + String(']', depth)
    | Truncate at -> line.Substring(0, at % (line.Length + 1))
    | InsertChar(at, c) -> line.Insert(at % (line.Length + 1), string c)
    | WholeGarbage n -> String(Array.init (n % 40) (fun i -> char (32 + (i * 37 + n) % 95)))

let private genMutation =
    Gen.frequency
        [ 4, Gen.map2 (fun a b -> ReplaceNumber(a, b)) (Gen.choose (0, 9)) (Gen.choose (0, 100))
          2, Gen.map2 (fun a b -> IntoString(a, b)) (Gen.choose (0, 9)) (Gen.choose (0, 100))
          1, Gen.constant DuplicateKey
          1, Gen.constant UnknownKey
          1, Gen.map Nest (Gen.elements [ 1; 2; 63; 64; 65; 200 ])
          1, Gen.map Truncate (Gen.choose (0, 200))
          1, Gen.map2 (fun a c -> InsertChar(a, c)) (Gen.choose (0, 200)) (Gen.elements [ '\u0000'; '\u001f'; '"'; '\\'; '{'; '}'; ','; ':'; ' '; '\r'; '\ud800'; 'x' ])
          1, Gen.map WholeGarbage (Gen.choose (0, 1000)) ]

/// A setup with an allocator, live and soft-free hashed blocks, and a sequence with blocks.
let private setup =
    [ """{"op":"new","capacity":8}"""; """{"op":"allocate_n","n":3}"""; """{"op":"register_block_hash","block":2,"hash":"42"}"""
      """{"op":"register_block_hash","block":1,"hash":"43"}"""; """{"op":"free","blocks":[1]}"""
      """{"op":"seq_new","seq":0,"block_size":2,"max_blocks":4}"""; """{"op":"seq_ensure_capacity","seq":0,"target_len":3}""" ]

let private documentedKinds = set [ "resource_exhausted"; "invalid_argument"; "invalid_state"; "device_error"; "bad_request" ]

/// Everything a session holds, as its own replies say it.
let private everything (session: ReplaySession) =
    session.Handle """{"op":"state"}""" + session.Handle """{"op":"seq_state","seq":0}""" + session.Handle """{"op":"seq_state","seq":1}"""

/// Why a reply is not one documented protocol line, or None.
let private undocumented (reply: string) =
    if reply.Contains '\n' || reply.Contains '\r' then Some "more than one line"
    else
        match PortReply.parse reply with
        | PortReply.Malformed why -> Some why
        | PortReply.Err kind when not (documentedKinds.Contains kind) -> Some("undocumented error kind " + kind)
        | _ -> None

[<Settings.ScaledProperty(3000)>]
let ``a mutated request gets one documented reply, and a failed one changes nothing`` () =
    let genCase = Gen.zip (Gen.elements templates) (Gen.frequency [ 3, Gen.listOfLength 1 genMutation; 1, Gen.listOfLength 2 genMutation ])
    Prop.forAll (Arb.fromGen genCase) (fun (template, mutations) ->
        use session = new ReplaySession()
        for line in setup do
            Assert.StartsWith("{\"ok\"", session.Handle line)
        let line = mutations |> List.fold mutate template
        let before = everything session
        let reply = session.Handle line
        let after = everything session
        let failed = reply.StartsWith "{\"err\""
        match undocumented reply with
        | Some why -> failwithf "request %s: reply %s is not documented: %s" line reply why
        | None when failed && before <> after -> failwithf "request %s failed (%s) but changed the state:\n  before %s\n  after  %s" line reply before after
        | None -> Prop.ofTestable true |> Prop.collect (if failed then (PortReply.parse reply |> function PortReply.Err k -> k | _ -> "?") else "ok"))

[<Fact>]
let ``lines that once ended a session or were judged against the doc get the documented reply`` () =
    use session = new ReplaySession()
    let expect kind (line: string) =
        let reply = session.Handle line
        Assert.True(reply.StartsWith(sprintf "{\"err\":\"%s\"" kind), sprintf "%s → %s (expected %s)" line reply kind)
    expect "bad_request" """{"op":"\ud800"}"""
    expect "bad_request" """{"\udc00":1,"op":"allocate"}"""
    expect "bad_request" """{"op":"allocate_n"}""" // a missing field before any allocator: the field is checked first
    Assert.Equal("""{"ok":null}""", session.Handle """{"op":"new","capacity":4}""")
    expect "invalid_argument" """{"op":"ref_count","block":100000000000000000000000000000}"""
    expect "invalid_argument" """{"op":"free","blocks":[-100000000000000000000000000000]}"""
    expect "resource_exhausted" """{"op":"allocate_n","n":100000000000000000000000000000}"""
    expect "bad_request" "{\"op\":\"register_block_hash\",\"block\":0,\"hash\":\"12\\u0000\"}"
    expect "bad_request" """{"op":"try_acquire_by_hash","hash":"12 "}"""
    expect "bad_request" """{"op":"try_acquire_by_hash","hash":"0x"}"""
    expect "bad_request" """{"op":"try_acquire_by_hash","hash":"+1"}"""
    expect "bad_request" """{"op":"allocate_n","n":1.0}"""
    Assert.Equal("""{"ok":[]}""", session.Handle """{"op":"allocate_n","n":-0}""")
    Assert.Equal("""{"ok":null}""", session.Handle """{"op":"try_acquire_by_hash","hash":-0}""")
    Assert.Equal("""{"ok":null}""", session.Handle """{"op":"try_acquire_by_hash","hash":"0009"}""")
    Assert.Equal("""{"ok":{"protocol":1,"profiles":["lifo","lru","any"],"features":["state","hash","alloc","seq","device_faults","req"]}}""", session.Handle """{"op":"hello"}""")

[<Fact>]
let ``Run answers each non-blank line once, whatever ends it`` () =
    let input = new IO.StringReader("{\"op\":\"new\",\"capacity\":1}\r\n\r\n  \t\n{\"op\":\"allocate\"}\r{\"op\":\"allocate\"}\n\u0000\n{\"op\":\"free_count\"}")
    let output = new IO.StringWriter()
    (new ReplaySession()).Run(input, output)
    let lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
    Assert.Equal(5, lines.Length)
    Assert.Equal("""{"ok":0}""", lines[1])
    Assert.StartsWith("""{"err":"resource_exhausted""", lines[2])
    Assert.StartsWith("""{"err":"bad_request""", lines[3])
    Assert.Equal("""{"ok":0}""", lines[4])

/// A reader that hands out one character per Read, so that every line end falls on a buffer edge.
type private Trickling(text: string) =
    inherit IO.TextReader()
    let mutable i = 0
    override _.Read(buffer: char[], index: int, count: int) =
        if i >= text.Length || count = 0 then 0
        else
            buffer[index] <- text[i]
            i <- i + 1
            1

[<Settings.ScaledProperty(300)>]
let ``the bounded line reader splits lines exactly as ReadLine does, at any buffer edge`` (parts: (bool * int) list) =
    let text = String.Join("", parts |> List.map (fun (cr, n) -> String('a', abs n % 4) + (if cr then "\r" else "\n") + (if n % 3 = 0 then "\n" else "")))
    let expected =
        let r = new IO.StringReader(text)
        [ let mutable l = r.ReadLine()
          while not (isNull l) do
              yield l
              l <- r.ReadLine() ]
    let read (reader: IO.TextReader) =
        let b = PagedKv.Protocol.BoundedLineReader(reader, 1000)
        [ let mutable line = null
          let mutable length = 0L
          while b.TryRead(&line, &length) do
              yield line ]
    read (new IO.StringReader(text)) = expected && read (new Trickling(text)) = expected
