"""The prefix cache over paged_kv.Allocator, ported from spec/PagedKv.Spec/PrefixCache.fs (with
Sequence.fs for sizes and the device table), and its replay-protocol ops (docs/protocol.md):
prefix_new, req_admit, req_append, req_finish, req_preempt, req_state, prefix_stats.

A request's prompt is hashed block by block, chained from the request's salt. Admission reuses
the longest verified run of cached blocks from the start (leaving a token to compute), allocates
the rest of the prompt's blocks all or nothing, and sets the length to the reused tokens. Appends
grow the table and register each block that becomes full (the first writer of a hash keeps it).
Finish and preempt free the blocks last first. Every error is raised before anything changes.
The port has no device: a request's device table is its host table padded with zeros to
max_blocks (Sequence.deviceTable), as the reference's CPU accelerator reads it back.
"""
from paged_kv import (BUG, HASH, INT, MAX_BLOCK_SIZE, MAX_REF_COUNT, OPT_INT, TOKENS, block_hash,
                      invalid_argument, invalid_state)

MAX_BLOCKS_PER_SEQ, MAX_SEQUENCE_ID, INT32_MAX = 1 << 20, 65536, (1 << 31) - 1  # Limits.fs

STATS = ("admitted", "refused", "appends_refused", "finished", "preempted", "prompt_tokens",
         "reused_tokens", "lookups", "hits", "collisions", "cross_salt_collisions", "registered",
         "registrations_skipped")


def blocks_for_tokens(block_size, tokens):
    """Sequence.blocksForTokens: ceil(tokens / block_size)."""
    if BUG == "block-count-off-by-one":  # BUG block-count-off-by-one: ceil, not floor + 1
        return tokens // block_size + 1
    return (tokens + block_size - 1) // block_size


def check_id(q):  # PrefixCache.outOfRange: an id no request can have is an unknown one
    if not 0 <= q <= MAX_SEQUENCE_ID:
        raise invalid_argument(f"request id {q} is outside [0, {MAX_SEQUENCE_ID}]")


class Record:
    """What the cache recorded when it registered a block (PrefixCache.Record)."""
    __slots__ = ("tokens", "salt", "parent", "parent_generation", "generation")

    def __init__(self, tokens, salt, parent, parent_generation, generation):
        self.tokens, self.salt, self.parent = tokens, salt, parent
        self.parent_generation, self.generation = parent_generation, generation


class Request:
    """PrefixCache.Request: its table, salt, computed tokens (its length), a hash per full block,
    and each table block's generation when it joined the table."""
    __slots__ = ("blocks", "salt", "tokens", "hashes", "generations")

    def __init__(self, blocks, salt, tokens, hashes, generations):
        self.blocks, self.salt, self.tokens = blocks, salt, tokens
        self.hashes, self.generations = hashes, generations


class PrefixCache:
    def __init__(self, alloc, block_size, max_blocks, collide):
        self.alloc, self.block_size, self.max_blocks, self.collide = alloc, block_size, max_blocks, collide
        self.requests = {}  # id -> Request
        self.records = {}  # block -> Record
        self.stats = dict.fromkeys(STATS, 0)

    def hash(self, parent, tokens):  # PrefixCache.hash: Sip, or Colliding k (the hash mod k)
        h = block_hash(parent, tokens)
        return h if self.collide is None else h % self.collide

    def first_parent(self, salt):
        return 0 if BUG == "salt-not-in-first-block" else salt  # BUG salt-not-in-first-block

    def too_long(self, length):
        return length > self.max_blocks * self.block_size or length > INT32_MAX

    def holds(self, b, tokens, salt, parent):
        """Whether block b holds exactly these tokens under this salt after this parent (-1: none),
        both unchanged since the record was made."""
        if BUG == "hit-trusts-hash":  # BUG hit-trusts-hash: a 64-bit hash is never trusted alone
            return True
        r, gen = self.records.get(b), self.alloc.generation
        return (r is not None and r.generation == gen(b) and r.salt == salt and r.parent == parent
                and (parent < 0 or r.parent_generation == gen(parent)) and r.tokens == tokens)

    def get(self, q):
        check_id(q)
        if q not in self.requests:
            raise invalid_argument(f"no request {q}")
        return self.requests[q]

    def admit(self, q, prompt, salt):
        check_id(q)  # values first, then the state (docs/protocol.md, order of checks)
        if self.too_long(len(prompt)):
            raise invalid_argument(f"prompt of {len(prompt)} tokens is longer than a sequence holds")
        if not prompt:
            raise invalid_argument("a prompt has at least 1 token, not 0")
        if q in self.requests:
            raise invalid_state(f"request {q} is admitted already")
        bs, alloc, stats = self.block_size, self.alloc, self.stats
        reusable = (len(prompt) - 1) // bs  # at least one token is left to compute
        if BUG == "reuse-last-block":  # BUG reuse-last-block: the last token must be computed
            reusable = len(prompt) // bs
        hits, hashes, parent_hash = [], [], self.first_parent(salt)
        for i in range(reusable):  # the longest verified run of cached blocks
            tokens = prompt[i * bs:(i + 1) * bs]
            h = self.hash(parent_hash, tokens)
            stats["lookups"] += 1
            b = alloc.table.get(h)
            if b is None:
                break
            if not self.holds(b, tokens, salt, hits[-1] if hits else -1):  # a collision: a miss
                record = self.records.get(b)
                stats["collisions"] += 1
                stats["cross_salt_collisions"] += int((record.salt if record else 0) != salt)
                break
            if alloc.refs.get(b, 0) == MAX_REF_COUNT:
                break  # shared as often as a block can be
            hits.append(b)
            hashes.append(h)
            parent_hash = h
        resurrected = sum(1 for b in hits if b not in alloc.refs)
        fresh = blocks_for_tokens(bs, len(prompt)) - len(hits)
        if BUG == "resurrection-not-reserved":  # BUG resurrection-not-reserved: hits leave the free list
            resurrected = 0
        if BUG == "admit-not-atomic":  # BUG admit-not-atomic: the hits are taken before the pool is checked
            for h in hashes:
                alloc.try_acquire_by_hash(h)
            resurrected = 0
        available = len(alloc.free) - resurrected
        if fresh > available:  # all or nothing: refused, nothing taken
            stats["refused"] += 1
            return {"admitted": False, "missing": fresh - available}
        for h in hashes if BUG != "admit-not-atomic" else ():
            alloc.try_acquire_by_hash(h)  # shared, or a soft-free block resurrected
        blocks = hits + alloc.allocate_n(fresh)
        computed = len(hits) * bs
        self.requests[q] = Request(blocks, salt, prompt[:computed], hashes,
                                   [alloc.generation(b) for b in blocks])
        stats["admitted"] += 1
        stats["prompt_tokens"] += len(prompt)
        stats["reused_tokens"] += computed
        stats["hits"] += min(len(hits), 1) if BUG == "stats-miscount" else len(hits)  # BUG stats-miscount: per block
        return {"admitted": True, "computed": computed, "blocks": list(blocks)}

    def register_full(self, r):
        """Registers each block of r that has become full, in order; a hash already held by
        another block is skipped (the first writer keeps it)."""
        bs, alloc = self.block_size, self.alloc
        full = len(r.tokens) // bs
        if BUG == "register-partial-block":  # BUG register-partial-block: only full blocks have a hash
            full = blocks_for_tokens(bs, len(r.tokens))
        for i in range(len(r.hashes), full):
            tokens = r.tokens[i * bs:(i + 1) * bs]
            h = self.hash(self.first_parent(r.salt) if i == 0 else r.hashes[-1], tokens)
            r.hashes.append(h)
            if h in alloc.table and BUG != "register-duplicate":  # BUG register-duplicate
                self.stats["registrations_skipped"] += 1
                continue
            b = r.blocks[i]
            parent = r.blocks[i - 1] if i > 0 else -1
            alloc.register_block_hash(b, h)
            self.records[b] = Record(tokens, r.salt, parent, alloc.generation(parent) if parent >= 0 else 0,
                                     alloc.generation(b))
            self.stats["registered"] += 1

    def append(self, q, tokens):
        r = self.get(q)
        bs, alloc = self.block_size, self.alloc
        length = len(r.tokens) + len(tokens)
        if self.too_long(length):
            raise invalid_argument(f"request of {length} tokens is longer than a sequence holds")
        for i in range(len(r.tokens) // bs, min(blocks_for_tokens(bs, length), len(r.blocks))):  # the partly filled block and those it fills
            b = r.blocks[i]
            reallocated = alloc.generation(b) != r.generations[i] and BUG != "lost-ignores-generation"
            if b not in alloc.refs or reallocated:  # BUG lost-ignores-generation: freed, or freed and re-allocated
                raise invalid_state(f"block {b} of request {q} was freed or re-allocated by another user")
        missing = blocks_for_tokens(bs, length) - len(r.blocks)
        if missing > 0 and len(alloc.free) < missing:
            self.stats["appends_refused"] += 1
            return {"appended": False, "missing": missing - len(alloc.free)}
        if missing > 0:
            added = alloc.allocate_n(missing)
            r.blocks += added
            r.generations += [alloc.generation(b) for b in added]
        r.tokens = r.tokens + tokens
        self.register_full(r)
        return {"appended": True}

    def end(self, q, counter):
        """finish / preempt: the request's blocks freed last first (a Fault: nothing changed)."""
        r = self.get(q)
        order = r.blocks if BUG == "finish-head-first" else r.blocks[::-1]  # BUG finish-head-first
        self.alloc.free_blocks(order)
        del self.requests[q]
        self.stats[counter] += 1
        if BUG == "preempt-drops-records" and counter == "preempted":  # BUG preempt-drops-records
            for b in r.blocks:  # "its KV is evicted": but its cached blocks stay soft-free, content kept
                self.records.pop(b, None)

    def state(self, q):
        r = self.get(q)
        return {"len": len(r.tokens), "blocks": list(r.blocks), "salt": str(r.salt),
                "device_table": r.blocks + [0] * (self.max_blocks - len(r.blocks))}


def prefix_new(s, a):
    """Shape (block_size, then max_blocks), then collide, then no request of the old cache admitted."""
    block_size, max_blocks, collide = a["block_size"], a["max_blocks"], a.get("collide")
    if not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise invalid_argument(f"block_size={block_size} is outside [1, {MAX_BLOCK_SIZE}]")
    if not 1 <= max_blocks <= MAX_BLOCKS_PER_SEQ:
        raise invalid_argument(f"max_blocks={max_blocks} is outside [1, {MAX_BLOCKS_PER_SEQ}]")
    if collide is not None and not 1 <= collide <= INT32_MAX:
        raise invalid_argument(f"collide={collide} is outside [1, {INT32_MAX}]")
    if s.prefix is not None and s.prefix.requests:
        raise invalid_state(f"request {min(s.prefix.requests)} is still admitted: finish or preempt it first")
    s.prefix = PrefixCache(s.alloc, block_size, max_blocks, collide)


SEQ = ("seq", INT)
PREFIX_OPS = {  # op: (its fields, in the order their values are judged; needs an allocator; run)
    "prefix_new": ([("block_size", INT), ("max_blocks", INT), ("collide", OPT_INT)], True, prefix_new),
    "req_admit": ([SEQ, ("tokens", TOKENS), ("salt", HASH)], True,
                  lambda s, a: s.cache().admit(a["seq"], a["tokens"], a["salt"])),
    "req_append": ([SEQ, ("tokens", TOKENS)], True, lambda s, a: s.cache().append(a["seq"], a["tokens"])),
    "req_finish": ([SEQ], True, lambda s, a: s.cache().end(a["seq"], "finished")),
    "req_preempt": ([SEQ], True, lambda s, a: s.cache().end(a["seq"], "preempted")),
    "req_state": ([SEQ], True, lambda s, a: s.cache().state(a["seq"])),
    "prefix_stats": ([], True, lambda s, a: dict(s.cache().stats)),
}
