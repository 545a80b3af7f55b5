#!/usr/bin/env python3
"""The paged KV-cache block allocator, ported from its specification (spec/PagedKv.Spec:
Allocator.fs, SipHash.fs, Limits.fs, Fault.fs), speaking the replay protocol of docs/protocol.md:
one JSON request per line on stdin, one JSON response per line on stdout. Std-only Python 3.11.
The prefix-cache layer (PrefixCache.fs: prefix_new, req_*, prefix_stats) is prefix_cache.py.
No sequence ops (seq_*) and no fail_next_copy: to this port those are unknown ops.
PAGEDKV_PORT_BUG=NAME plants one porting bug (BUGS below; ports/python/README.md).
"""
import io
import json
import os
import struct
import sys

MAX_CAPACITY, MAX_REF_COUNT, MAX_BLOCK_SIZE = 1 << 24, 65535, 65536  # Limits.fs
U64 = (1 << 64) - 1

BUGS = {  # each a realistic porting mistake, marked "BUG name" where it lives
    "scan-from-bottom": "allocate's unhashed preference searches from the bottom of the stack",
    "shift-remove": "removal from the stack shifts the entries above down instead of swap-remove",
    "peak-misses-resurrection": "a hash hit that resurrects a soft-free block does not raise the peak",
    "allocate-n-partial": "allocate_n keeps the blocks it took when it runs out",
    "stale-reverse-entry": "a block whose hash another block takes over keeps its block->hash record",
    "token-as-u64": "block_hash feeds each token as 8 bytes instead of 4",
    # the prefix cache (prefix_cache.py)
    "hit-trusts-hash": "a hash hit is reused without checking the cached block's tokens, salt and parent",
    "salt-not-in-first-block": "the first block's hash is chained from 0, not from the request's salt",
    "reuse-last-block": "admission may reuse every cached block of the prompt (len // block_size, not (len - 1) // block_size)",
    "finish-head-first": "finish and preempt free the request's blocks first to last, not last first",
    "admit-not-atomic": "a refused admission keeps the cached blocks it already acquired",
    "register-partial-block": "an append registers the last, partially filled block too (and never again once full)",
    "register-duplicate": "a full block registers its hash even when another block holds it (the last writer wins)",
    "preempt-drops-records": "preempt forgets what the request's cached blocks hold: a re-admission misses them",
    "lost-ignores-generation": "an append checks only that its blocks are live, not that they are still its own (generation)",
    "block-count-off-by-one": "blocks for n tokens computed as n // block_size + 1 (one too many at k * block_size)",
    "resurrection-not-reserved": "admission checks the pool without the soft-free hits it takes off it",
    "stats-miscount": "prefix_stats counts one hit per admission that reused blocks, not one per block reused",
}
BUG = os.environ.get("PAGEDKV_PORT_BUG", "")


class Reply(Exception):
    """An error response, raised before anything has changed. kind: the protocol's error kind."""
    def __init__(self, kind, msg):
        super().__init__(msg)
        self.kind, self.msg = kind, msg


def bad_request(msg): return Reply("bad_request", msg)
def invalid_argument(msg): return Reply("invalid_argument", msg)  # Fault.kind = InvalidArgument
def invalid_state(msg): return Reply("invalid_state", msg)  # Fault.kind = InvalidState
def exhausted(msg): return Reply("resource_exhausted", msg)  # Error.Exhausted


# ---- SipHash-1-3 with keys 0, 0 (Rust's DefaultHasher) and the block hashes: SipHash.fs ----

def _rotl(x, b): return ((x << b) | (x >> (64 - b))) & U64


def _sip_round(v0, v1, v2, v3):
    v0 = (v0 + v1) & U64; v1 = _rotl(v1, 13) ^ v0; v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & U64; v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & U64; v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & U64; v1 = _rotl(v1, 17) ^ v2; v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash13(msg: bytes) -> int:
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573
    whole = len(msg) // 8 * 8
    words = list(struct.unpack_from(f"<{whole // 8}Q", msg))
    words.append(int.from_bytes(msg[whole:], "little") | ((len(msg) & 0xFF) << 56))  # tail, length
    for m in words:
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3 ^ m)
        v0 ^= m
    v0, v1, v2, v3 = _sip_round(*_sip_round(*_sip_round(v0, v1, v2 ^ 0xFF, v3)))
    return v0 ^ v1 ^ v2 ^ v3


def block_hash(parent, tokens):
    """SipHash over parent as 8 little-endian bytes, then each token as 4; no length prefix."""
    token = "Q" if BUG == "token-as-u64" else "I"  # BUG token-as-u64: a token is a u32, 4 bytes
    return siphash13(struct.pack(f"<Q{len(tokens)}{token}", parent, *tokens))


def block_hash_chain(tokens, block_size):
    """The full blocks' hashes, each chained from the previous one (0 first); a partial tail is dropped."""
    if not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise invalid_argument(f"block_size={block_size} is outside [1, {MAX_BLOCK_SIZE}]")
    hashes, parent = [], 0
    for start in range(0, len(tokens) - block_size + 1, block_size):
        parent = block_hash(parent, tokens[start:start + block_size])
        hashes.append(parent)
    return hashes


# ---- The allocator: Allocator.fs ----

def occurrences(blocks):
    """Each block of a batch with how often it has occurred so far (1 the first time)."""
    seen = {}
    for b in blocks:
        seen[b] = seen.get(b, 0) + 1
        yield b, seen[b]


class Allocator:
    def __init__(self, capacity, policy):
        if not 0 <= capacity <= MAX_CAPACITY:
            raise invalid_argument(f"capacity={capacity} is outside [0, {MAX_CAPACITY}]")
        self.capacity, self.policy, self.peak = capacity, policy, 0
        self.free = list(range(capacity - 1, -1, -1))  # bottom -> top: the last entry is taken next
        self.refs = {}  # block -> ref count, live blocks only (absent: 0, free)
        self.table = {}  # hash -> block
        self.hash_of = {}  # block -> hash: the table's inverse
        self.gen = {}  # block -> how often an allocation handed it out (absent: 0)

    # FreeOrder: where a freed block goes, which free entry allocate takes, how an entry is removed.
    def _release(self, b):
        if self.policy == "lru" and b in self.hash_of:
            self.free.insert(0, b)  # lru, hashed: the tail, reused last
        else:
            self.free.append(b)  # lifo: on top; lru, unhashed: the head, reused first

    def _choose(self):
        free, top = self.free, len(self.free) - 1
        if self.policy == "lru":
            return top
        if BUG == "scan-from-bottom":  # BUG scan-from-bottom: Rust's rposition, ported as a forward search
            return next((i for i, b in enumerate(free) if b not in self.hash_of), top)
        return next((i for i in range(top, -1, -1) if free[i] not in self.hash_of), top)

    def _remove(self, i):
        if self.policy == "lru" or BUG == "shift-remove":  # BUG shift-remove: lifo must swap-remove
            return self.free.pop(i)  # lru: unlinked, the queue keeps its order
        b, self.free[i] = self.free[i], self.free[-1]  # swap-remove: the top entry moves into slot i
        self.free.pop()
        return b

    def _hash_dropped(self, b):  # a free block has just lost its hash to another block
        if self.policy == "lru":  # to the head, as an unhashed release (lifo: the stack stays)
            self.free.remove(b)
            self.free.append(b)

    def _raise_peak(self):
        self.peak = max(self.peak, self.capacity - len(self.free))

    def _drop_hash(self, b):
        h = self.hash_of.pop(b, None)
        if h is not None and self.table.get(h) == b:
            del self.table[h]

    def _take(self, i):  # entry i off the free list for a new owner: stale hash dropped, ref 1
        b = self._remove(i)
        self._drop_hash(b)
        self.refs[b] = 1
        self.gen[b] = self.gen.get(b, 0) + 1  # its content is about to be overwritten
        return b

    def _check_ids(self, blocks):  # arguments before state; the first offender in batch order
        for b in blocks:
            if not 0 <= b < self.capacity:
                raise invalid_argument(f"block {b} is outside [0, {self.capacity})")

    def allocate(self):
        if not self.free:
            raise exhausted(f"paged KV pool exhausted (capacity={self.capacity} blocks, all in use)")
        b = self._take(self._choose())
        self._raise_peak()
        return b

    def allocate_n(self, n):
        if n < 0:
            raise invalid_argument(f"allocate_n: n={n} is negative")
        if BUG == "allocate-n-partial":  # BUG allocate-n-partial: must be all or nothing
            return [self.allocate() for _ in range(n)]
        if n > len(self.free):
            raise exhausted(f"paged KV pool exhausted: need {n} blocks but only {len(self.free)} free")
        blocks = [self._take(self._choose()) for _ in range(n)]
        self._raise_peak()
        return blocks

    def free_blocks(self, blocks):
        self._check_ids(blocks)
        for b, k in occurrences(blocks):
            if k > self.refs.get(b, 0):
                raise invalid_state(f"free: block {b} has ref_count={self.refs.get(b, 0)}, freed {k} time(s)")
        for b in blocks:
            self.refs[b] -= 1
            if self.refs[b] == 0:  # soft-free: it keeps its hash
                del self.refs[b]
                self._release(b)

    def acquire_many(self, blocks):
        self._check_ids(blocks)
        for b, k in occurrences(blocks):
            if b not in self.refs:
                raise invalid_state(f"acquire: block {b} is free")
            if self.refs[b] + k > MAX_REF_COUNT:
                raise invalid_state(f"acquire: block {b} would pass ref_count {MAX_REF_COUNT}")
        for b in blocks:
            self.refs[b] += 1

    def try_acquire_by_hash(self, h):
        b = self.table.get(h)
        if b is None:
            return None
        if b not in self.refs:  # soft-free: resurrected, with its hash
            self._remove(self.free.index(b))
            self.refs[b] = 1
            if BUG != "peak-misses-resurrection":  # BUG peak-misses-resurrection: must raise the peak
                self._raise_peak()
        elif self.refs[b] == MAX_REF_COUNT:
            raise invalid_state(f"try_acquire_by_hash: block {b} is at ref_count {MAX_REF_COUNT}")
        else:
            self.refs[b] += 1
        return b

    def register_block_hash(self, b, h):
        self._check_ids([b])
        if b not in self.refs:
            raise invalid_state(f"register_block_hash: block {b} is free")
        if self.hash_of.get(b) == h:
            return  # the same hash again changes nothing
        self._drop_hash(b)
        other = self.table.get(h)
        if other is not None and BUG != "stale-reverse-entry":  # BUG stale-reverse-entry (D2)
            del self.hash_of[other]  # last writer wins: the other block loses h entirely
            if other not in self.refs:
                self._hash_dropped(other)
        self.table[h], self.hash_of[b] = b, h

    def generation(self, b):
        return self.gen.get(b, 0)

    def ref_count(self, b):
        self._check_ids([b])
        return self.refs.get(b, 0)

    def state(self):
        return {"capacity": self.capacity, "free_list": self.free,
                "ref_counts": [self.refs.get(b, 0) for b in range(self.capacity)],
                "hash_table": [{"hash": str(h), "block": b} for h, b in sorted(self.table.items())],
                "peak_in_use": self.peak}


# ---- The replay protocol: docs/protocol.md ----

INT, INTS, TOKENS = "an integer", "a list of integers", "a list of u32"
HASH, POLICY, OPT_INT = "a u64", '"lifo" or "lru"', "an optional integer"
OPTIONAL = (POLICY, OPT_INT)  # the fields an op may leave out
HELLO = {"protocol": 1, "profiles": ["lifo", "lru", "any"], "features": ["state", "hash", "alloc", "req"]}

OPS = {  # op: (its fields, in the order their values are judged; whether it needs an allocator; run)
    "hello": ([], False, lambda s, a: HELLO),
    "new": ([("capacity", INT), ("policy", POLICY)], False, lambda s, a: s.new(a["capacity"], a.get("policy", "lifo"))),
    "allocate": ([], True, lambda s, a: s.alloc.allocate()),
    "allocate_n": ([("n", INT)], True, lambda s, a: s.alloc.allocate_n(a["n"])),
    "free": ([("blocks", INTS)], True, lambda s, a: s.alloc.free_blocks(a["blocks"])),
    "acquire": ([("block", INT)], True, lambda s, a: s.alloc.acquire_many([a["block"]])),
    "acquire_many": ([("blocks", INTS)], True, lambda s, a: s.alloc.acquire_many(a["blocks"])),
    "register_block_hash": ([("block", INT), ("hash", HASH)], True,
                            lambda s, a: s.alloc.register_block_hash(a["block"], a["hash"])),
    "try_acquire_by_hash": ([("hash", HASH)], True, lambda s, a: s.alloc.try_acquire_by_hash(a["hash"])),
    "ref_count": ([("block", INT)], True, lambda s, a: s.alloc.ref_count(a["block"])),
    "free_count": ([], True, lambda s, a: len(s.alloc.free)),
    "capacity": ([], True, lambda s, a: s.alloc.capacity),
    "peak_in_use": ([], True, lambda s, a: s.alloc.peak),
    "hash_table_size": ([], True, lambda s, a: len(s.alloc.table)),
    "state": ([], True, lambda s, a: s.alloc.state()),
    "block_hash": ([("parent", HASH), ("tokens", TOKENS)], False,
                   lambda s, a: str(block_hash(a["parent"], a["tokens"]))),
    "block_hash_chain": ([("tokens", TOKENS), ("block_size", INT)], False,
                         lambda s, a: [str(h) for h in block_hash_chain(a["tokens"], a["block_size"])]),
}


sys.modules.setdefault("paged_kv", sys.modules[__name__])  # run as a script: prefix_cache imports this module
from prefix_cache import PREFIX_OPS  # noqa: E402  (it needs the names above)
OPS.update(PREFIX_OPS)


def _integer(text):  # an integer literal of any width, judged by value: past 40 characters, past every limit
    return int(text) if len(text) <= 40 else (-10 ** 40 if text[0] == "-" else 10 ** 40)


def _object(pairs):
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("a field name appears twice")
    return dict(pairs)


def _not_json(name):
    raise ValueError(f"{name} is not JSON")


def _has_surrogate(v):  # a lone surrogate ("\ud800", or a byte that is not UTF-8): no character
    if type(v) is str:
        return any("\ud800" <= c <= "\udfff" for c in v)
    if type(v) is dict:
        v = [*v.keys(), *v.values()]
    return type(v) is list and any(_has_surrogate(x) for x in v)


def parse_hash(v):
    """A u64: an integer, a decimal string of digits, or "0x"/"0X" and hex digits; else None."""
    if type(v) is int:
        return v if 0 <= v <= U64 else None
    if type(v) is not str:
        return None
    hexa = v[:2] in ("0x", "0X")
    body = v[2:] if hexa else v
    if not body or not set(body) <= set("0123456789abcdefABCDEF" if hexa else "0123456789"):
        return None
    body = body.lstrip("0") or "0"  # leading zeros are allowed, of any number
    if len(body) > (16 if hexa else 20):
        return None
    h = int(body, 16 if hexa else 10)
    return h if h <= U64 else None


def parse_field(name, kind, v):
    if kind in (INT, OPT_INT) and type(v) is int:  # type(True) is bool, not int
        return v
    if kind in (INTS, TOKENS) and type(v) is list and all(type(x) is int for x in v):
        if kind == INTS or all(0 <= x <= 0xFFFFFFFF for x in v):
            return v
    if kind == HASH and (h := parse_hash(v)) is not None:
        return h
    if kind == POLICY and type(v) is str and v in ("lifo", "lru"):
        return v
    raise bad_request(f"field '{name}' must be {kind}")


class Session:
    alloc = None
    prefix = None  # the prefix cache over alloc (prefix_cache.PrefixCache), once prefix_new made one

    def new(self, capacity, policy):
        self.alloc = Allocator(capacity, policy)  # checked first: a refused new drops nothing
        self.prefix = None  # new drops the prefix cache with the allocator

    def cache(self):
        if self.prefix is None:
            raise bad_request('no prefix cache: send {"op":"prefix_new","block_size":B,"max_blocks":M} first')
        return self.prefix

    def handle(self, line):
        """The response to one request line, judged in the doc's order of checks."""
        try:
            try:  # past 2 levels of nesting no request is well-formed: no depth check of its own
                req = json.loads(line, object_pairs_hook=_object, parse_int=_integer,
                                 parse_constant=_not_json)
            except Exception as e:  # not JSON, a field twice, NaN, nested too deep for Python
                raise bad_request(f"malformed JSON: {type(e).__name__}")
            if ("\\u" in line or not line.isascii()) and _has_surrogate(req):
                raise bad_request("a string is not valid text")
            if type(req) is not dict or type(req.get("op")) is not str:
                raise bad_request("a request is a JSON object with a string field 'op'")
            if req["op"] not in OPS:
                raise bad_request(f"unknown op {req['op']!a}")
            fields, needs_allocator, run = OPS[req["op"]]
            for name in req:
                if name != "op" and name not in (field for field, _ in fields):
                    raise bad_request(f"op {req['op']} takes no field {name!a}")
            args = {}
            for name, kind in fields:
                if name in req:
                    args[name] = parse_field(name, kind, req[name])
                elif kind not in OPTIONAL:
                    raise bad_request(f"op {req['op']} needs field '{name}'")
            if needs_allocator and self.alloc is None:
                raise bad_request('no allocator: send {"op":"new","capacity":N} first')
            return {"ok": run(self, args)}
        except Reply as e:
            return {"err": e.kind, "msg": e.msg}
        except Exception as e:  # a bug in this port: say so, and go on
            return {"err": "internal_error", "msg": f"{type(e).__name__}: {str(e)!a}"}


def is_blank(line):  # whitespace as .NET's string.Trim sees it (Python's isspace adds \x1c-\x1f)
    return all(c.isspace() and c not in "\x1c\x1d\x1e\x1f" for c in line)


def main():
    if BUG and BUG not in BUGS:
        print(f"paged_kv.py: unknown PAGEDKV_PORT_BUG {BUG!r}; known: {', '.join(BUGS)}", file=sys.stderr)
        sys.exit(2)
    session = Session()
    # Lines end at \n, \r or \r\n, as for .NET's ReadLine; a byte that is not UTF-8 becomes a lone surrogate.
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape", newline=None)
    try:
        for line in stdin:
            if not is_blank(line):
                sys.stdout.write(json.dumps(session.handle(line), separators=(",", ":")) + "\n")
                sys.stdout.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        pass


if __name__ == "__main__":
    main()
