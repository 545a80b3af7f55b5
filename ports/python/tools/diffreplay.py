#!/usr/bin/env python3
"""Differential replay of random prefix-cache traffic: the port against the reference.

Sends each generated request to both (interactively: the generator reads the reference's replies
to pick blocks and requests), compares reply by reply (`ok` values as JSON values, errors by
`err` kind) and stops at the first difference, printing the session's requests so far (also
written to --repro). Std-only.

  python3 ports/python/tools/diffreplay.py --requests 20000 --seed 1
  PAGEDKV_PORT_BUG=reuse-last-block python3 ports/python/tools/diffreplay.py --requests 5000

Traffic: sessions of `new` (capacity 8-160, lifo|lru) + `prefix_new` (block_size 1-4, max_blocks
4-32, collide absent/1/2/4), then admissions of prompts that share prefixes across requests and
tenants (salts in every accepted spelling), prefill and decode appends, finish, preempt and
re-admission, req_state / prefix_stats / state, raw allocator ops on the requests' blocks, and
misuse (unknown, out-of-range and huge ids, a second admit, empty and too-long prompts, bad
fields, prefix_new while requests are admitted, req_* before prefix_new).
"""
import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORT = f"{sys.executable} {HERE.parent / 'paged_kv.py'}"
REFERENCE = "dotnet src/PagedKv.Cli/bin/Release/net10.0/PagedKv.Cli.dll replay"
# The port has no device: these are unknown ops to it (bad_request). The reference is not sent
# them, as fail_next_copy would fail a device copy of its next request.
PORT_ONLY = {"seq_new", "seq_state", "fail_next_copy"}


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from selfcheck import agrees as agree  # noqa: E402  (one JSON comparison for both drivers)


class Proc:
    def __init__(self, cmd, env=None):
        self.p = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1, env=env)

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline()
        if not reply:
            raise SystemExit(f"a process ended (request {line})")
        return json.loads(reply)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


class Gen:
    """Random requests, steered by the reference's replies."""

    def __init__(self, rng):
        self.rng = rng
        self.reset_session()

    def reset_session(self):
        r = self.rng
        self.capacity = r.choice([8, 12, 16, 24, 40, 64, 100, 160])
        self.policy = r.choice(["lifo", "lru"])
        self.bs = r.randint(1, 4)
        self.max_blocks = r.randint(4, 32)
        self.collide = r.choice([None, None, 1, 2, 4])
        self.alphabet = r.choice([2, 3, 8, 1000])
        self.salts = [0, 0, 1, r.randrange(1 << 64), 7]
        # prefixes shared across requests: a few "system prompts"
        self.prefixes = [[r.randrange(self.alphabet) for _ in range(r.randint(0, 3 * self.bs + 2))]
                         for _ in range(4)]
        self.reqs = {}  # id -> {"prompt", "computed", "tokens", "salt", "blocks"}
        self.history = []  # prompts (with salts) seen, for re-admission
        self.has_prefix = False

    def spell(self, h):
        return self.rng.choice([h, str(h), hex(h), "0X%X" % h, "00" + str(h)])

    def prompt(self):
        r = self.rng
        if self.history and r.random() < 0.35:
            return list(r.choice(self.history))
        base = list(r.choice(self.prefixes))
        tail = [r.randrange(self.alphabet) for _ in range(r.randint(0, 2 * self.bs + 1))]
        p = base + tail
        if not p or r.random() < 0.02:
            p = [] if r.random() < 0.5 else p
        if r.random() < 0.02:
            p = [r.randrange(self.alphabet) for _ in range(self.max_blocks * self.bs + r.randint(1, 3))]
        return p

    def seq_id(self):
        r = self.rng.random()
        if r < 0.03:
            return self.rng.choice([-1, 65537, 65536, 10 ** 30, -(10 ** 30)])
        if r < 0.5 and self.reqs:
            return self.rng.choice(list(self.reqs))
        return self.rng.randint(0, 9)

    def next(self):
        """One request (a dict, or a raw string for malformed lines)."""
        r = self.rng
        x = r.random()
        if x < 0.012:
            self.reset_session()
            return {"op": "new", "capacity": self.capacity, "policy": self.policy}
        if not self.has_prefix or x < 0.02:
            if r.random() < 0.15:  # out-of-range shape, or a bad collide
                return r.choice([
                    {"op": "prefix_new", "block_size": r.choice([0, 65537, -3]), "max_blocks": 4},
                    {"op": "prefix_new", "block_size": 2, "max_blocks": r.choice([0, (1 << 20) + 1])},
                    {"op": "prefix_new", "block_size": 2, "max_blocks": 4, "collide": r.choice([0, -1, 1 << 31, 10 ** 20])},
                    {"op": "prefix_new", "block_size": 0, "max_blocks": 0, "collide": 0},
                    {"op": "prefix_new", "block_size": 2, "max_blocks": 4, "collide": "2"},
                    {"op": "req_admit", "seq": 0, "tokens": [1], "salt": 0},
                ])
            self.bs = r.randint(1, 4)
            self.max_blocks = r.randint(4, 32)
            self.collide = r.choice([None, None, 1, 2, 4])
            req = {"op": "prefix_new", "block_size": self.bs, "max_blocks": self.max_blocks}
            if self.collide is not None:
                req["collide"] = self.collide
            return req
        if x < 0.30:
            q = self.seq_id()
            free_ids = [i for i in range(12) if i not in self.reqs]
            if q in self.reqs and free_ids and r.random() < 0.9:
                q = r.choice(free_ids)
            prompt = self.prompt()
            return {"op": "req_admit", "seq": q, "tokens": prompt, "salt": self.spell(r.choice(self.salts))}
        if x < 0.55:
            q = r.choice(list(self.reqs)) if self.reqs and r.random() < 0.85 else self.seq_id()
            info = self.reqs.get(q)
            if info and info["tokens"] < len(info["prompt"]) and r.random() < 0.85:  # prefill
                rest = info["prompt"][info["tokens"]:]
                n = len(rest) if r.random() < 0.6 else r.randint(1, len(rest))
                toks = rest[:n]
            elif r.random() < 0.03:
                toks = [1] * (self.max_blocks * self.bs + 1)
            else:  # decode
                toks = [r.randrange(self.alphabet) for _ in range(r.choice([0, 1, 1, 1, 2, self.bs]))]
            return {"op": "req_append", "seq": q, "tokens": toks}
        if x < 0.68:
            q = r.choice(list(self.reqs)) if self.reqs and r.random() < 0.7 else self.seq_id()
            return {"op": r.choice(["req_finish", "req_finish", "req_preempt"]), "seq": q}
        if x < 0.78:
            return self.observe()
        if x < 0.92:
            return self.raw()
        return self.misuse()

    def observe(self):
        r = self.rng
        op = r.choice(["req_state", "req_state", "prefix_stats", "state", "hash_table_size", "free_count"])
        return {"op": op, "seq": self.seq_id()} if op == "req_state" else {"op": op}

    def some_block(self):
        blocks = [b for info in self.reqs.values() for b in info["blocks"]]
        if blocks and self.rng.random() < 0.8:
            return self.rng.choice(blocks)
        return self.rng.randrange(-1, self.capacity + 1)

    def raw(self):
        r = self.rng
        y = r.random()
        if y < 0.2:
            return {"op": "allocate"}
        if y < 0.3:
            return {"op": "allocate_n", "n": r.randint(0, 4)}
        if y < 0.5:
            return {"op": "free", "blocks": [self.some_block() for _ in range(r.randint(1, 2))]}
        if y < 0.6:
            return {"op": "acquire", "block": self.some_block()}
        if y < 0.65:
            return {"op": "acquire_many", "blocks": [self.some_block() for _ in range(r.randint(1, 3))]}
        if y < 0.8:
            h = r.choice([r.randrange(4), r.randrange(1 << 64), 0, 1, 2, 3])
            return {"op": "register_block_hash", "block": self.some_block(), "hash": self.spell(h)}
        if y < 0.9:
            return {"op": "try_acquire_by_hash", "hash": self.spell(r.choice([0, 1, 2, 3, r.randrange(1 << 64)]))}
        return {"op": "ref_count", "block": self.some_block()}

    def misuse(self):
        r = self.rng
        return r.choice([
            {"op": "req_admit", "seq": 0, "tokens": [1, 2]},  # no salt
            {"op": "req_admit", "seq": 0, "tokens": [1, -2], "salt": 0},
            {"op": "req_admit", "seq": 0, "tokens": [1, 1 << 32], "salt": 0},
            {"op": "req_admit", "seq": 1, "tokens": [1, 2], "salt": "-1"},
            {"op": "req_admit", "seq": 1, "tokens": [1, 2], "salt": 1 << 64},
            {"op": "req_admit", "seq": 1.0, "tokens": [1, 2], "salt": 0},
            {"op": "req_admit", "seq": self.seq_id(), "tokens": [], "salt": 0},
            {"op": "req_admit", "seq": 10 ** 30, "tokens": [], "salt": 0},
            {"op": "req_append", "seq": self.seq_id(), "tokens": [1], "salt": 0},  # extra field
            {"op": "req_append", "seq": self.seq_id()},
            {"op": "req_finish", "seq": "0"},
            {"op": "req_state"},
            {"op": "prefix_stats", "seq": 0},
            {"op": "prefix_new", "block_size": self.bs, "max_blocks": self.max_blocks},  # maybe invalid_state
            {"op": "seq_new", "seq": 0, "block_size": 2, "max_blocks": 4},
            {"op": "fail_next_copy", "copy": 0},
            '{"op":"req_admit","seq":0,"seq":1,"tokens":[1],"salt":0}',
            '{"op":"req_state","seq":0',
        ])

    def saw(self, req, reply):
        """Follows the reference's reply."""
        if type(req) is not dict or "ok" not in reply:
            return
        op = req["op"]
        if op == "new":
            self.has_prefix = False
            self.reqs.clear()
        elif op == "prefix_new":
            self.has_prefix = True
            self.reqs.clear()
        elif op == "req_admit" and reply["ok"]["admitted"]:
            self.reqs[req["seq"]] = {"prompt": req["tokens"], "tokens": reply["ok"]["computed"],
                                     "salt": req["salt"], "blocks": reply["ok"]["blocks"]}
            if len(self.history) < 64:
                self.history.append(req["tokens"])
        elif op == "req_append" and reply["ok"]["appended"]:
            info = self.reqs[req["seq"]]
            info["tokens"] += len(req["tokens"])
            if info["tokens"] > len(info["prompt"]):
                info["prompt"] = info["prompt"] + req["tokens"][-(info["tokens"] - len(info["prompt"])):]
        elif op == "req_state":
            self.reqs[req["seq"]]["blocks"] = reply["ok"]["blocks"]
        elif op in ("req_finish", "req_preempt"):
            info = self.reqs.pop(req["seq"])
            if op == "req_preempt" and len(self.history) < 64:
                self.history.append(info["prompt"][:info["tokens"]] or info["prompt"])


def outcome(req, reply):
    """A coarse label of a reply, for --coverage."""
    op = req["op"] if type(req) is dict else "(malformed)"
    if "err" in reply:
        return f"{op} {reply['err']}"
    ok = reply["ok"]
    if op == "req_admit":
        return f"req_admit {'reused' if ok['admitted'] and ok['computed'] else 'admitted' if ok['admitted'] else 'refused'}"
    if op == "req_append":
        return f"req_append {'appended' if ok['appended'] else 'refused'}"
    if op == "prefix_stats":
        return f"prefix_stats {'collisions' if ok['collisions'] else 'no collision'}" + (
            ", cross-salt" if ok["cross_salt_collisions"] else "") + (", skipped" if ok["registrations_skipped"] else "")
    return f"{op} ok"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port", default=PORT)
    ap.add_argument("--reference", default=REFERENCE)
    ap.add_argument("--repro", default="diffreplay-repro.jsonl")
    ap.add_argument("--coverage", action="store_true", help="print how often each (op, outcome) occurred")
    ap.add_argument("--session", type=int, default=400, help="requests per session (a fresh process pair)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    done, tally = 0, {}
    while done < args.requests:
        ref, port = Proc(args.reference, env={**os.environ, "PAGEDKV_PORT_BUG": ""}), Proc(args.port)
        gen, sent = Gen(rng), []
        first = {"op": "new", "capacity": gen.capacity, "policy": gen.policy}
        for i in range(min(args.session, args.requests - done)):
            req = first if i == 0 else gen.next()
            line = req if type(req) is str else json.dumps(req)
            sent.append(line)
            if type(req) is dict and req["op"] in PORT_ONLY:  # no device: not sent to the reference
                a, b = {"err": "bad_request"}, port.ask(line)
            else:
                a, b = ref.ask(line), port.ask(line)
            if not agree(a, b):
                Path(args.repro).write_text("".join(s + "\n" for s in sent))
                print(f"DIFFERENCE at request {done + i + 1} ({i + 1} of its session, seed {args.seed})")
                for s in sent[-12:]:
                    print("  " + s[:300])
                print(f"  reference: {json.dumps(a)[:600]}\n  port:      {json.dumps(b)[:600]}")
                print(f"session written to {args.repro} ({len(sent)} requests)")
                ref.close(), port.close()
                sys.exit(1)
            gen.saw(req, a)
            tally[outcome(req, a)] = tally.get(outcome(req, a), 0) + 1
        done += min(args.session, args.requests - done)
        ref.close(), port.close()
    if args.coverage:
        for k in sorted(tally):
            print(f"  {tally[k]:7d}  {k}")
    print(f"{done} requests, no difference (seed {args.seed})")


if __name__ == "__main__":
    main()
