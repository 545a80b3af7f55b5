#!/usr/bin/env python3
"""Replays the original's recorded vectors (tests/vectors) through paged_kv.py and compares.

- ferrum-traces/*.jsonl and ferrum-edge-traces/*.jsonl: lines {"in": request, "out": response};
  `ok` values must be equal as JSON values, errors equal by `err` kind.
- block_hash_vectors.jsonl: block_hash (parent sent as JSON integer, decimal string and hex
  string) and block_hash_chain, through the protocol.

Std-only. Exits 1 on any mismatch. Runs the port with the environment as it is, so
PAGEDKV_PORT_BUG=NAME python3 ports/python/selfcheck.py shows whether the vectors catch a bug.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parent.parent / "tests" / "vectors"
PORT = [sys.executable, str(HERE / "paged_kv.py")]


def same(a, b):
    """JSON equality: 1 is not 1.0 nor true, list order matters, object key order does not."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def agrees(expected, actual):
    if "ok" in expected:
        return type(actual) is dict and actual.keys() == {"ok"} and same(expected["ok"], actual["ok"])
    return (type(actual) is dict and actual.keys() == {"err", "msg"}
            and actual["err"] == expected["err"] and type(actual["msg"]) is str)


def replay(name, cases):
    """Sends every request of `cases` ([(request, expected response)]) to one port process."""
    text = "".join(json.dumps(request) + "\n" for request, _ in cases)
    run = subprocess.run(PORT, input=text, capture_output=True, text=True, timeout=600)
    lines = run.stdout.splitlines()
    failures = []
    if run.returncode != 0:
        failures.append(f"{name}: the port exited with {run.returncode}: {run.stderr.strip()[-500:]}")
    if len(lines) != len(cases):
        failures.append(f"{name}: {len(cases)} requests but {len(lines)} response lines")
    for i, ((request, expected), line) in enumerate(zip(cases, lines), 1):
        try:
            actual = json.loads(line)
        except ValueError:
            actual = None
        if not agrees(expected, actual):
            shown = json.dumps(request)
            failures.append(f"{name}:{i}: {shown[:200]}\n    expected {json.dumps(expected)[:200]}"
                            f"\n    actual   {line[:200]}")
    return failures


def trace_cases(path):
    cases = []
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            cases.append((record["in"], record["out"]))
    return cases


def hash_cases(path):
    cases = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        v = json.loads(line)
        if v["kind"] == "block_hash":
            for parent in (v["parent"], str(v["parent"]), hex(v["parent"])):
                request = {"op": "block_hash", "parent": parent, "tokens": v["tokens"]}
                cases.append((request, {"ok": str(v["hash"])}))
        elif v["kind"] == "block_hash_chain":
            request = {"op": "block_hash_chain", "tokens": v["tokens"], "block_size": v["block_size"]}
            cases.append((request, {"ok": [str(h) for h in v["hashes"]]}))
        else:
            raise SystemExit(f"{path.name}: unknown kind {v['kind']!r}")
    return cases


def main():
    traces = sorted(VECTORS.glob("ferrum-traces/*.jsonl")) + sorted(VECTORS.glob("ferrum-edge-traces/*.jsonl"))
    runs = [(p.relative_to(VECTORS).as_posix(), trace_cases(p)) for p in traces]
    hashes = VECTORS / "block_hash_vectors.jsonl"
    runs.append((hashes.name, hash_cases(hashes)))
    if len(runs) < 11:
        raise SystemExit(f"expected 10 trace files and the hash vectors under {VECTORS}, found {len(runs)} files")
    failures, total = [], 0
    for name, cases in runs:
        found = replay(name, cases)
        total += len(cases)
        print(f"{'FAIL' if found else 'ok  '} {name}: {len(cases)} requests"
              + (f", {len(found)} mismatches" if found else ""))
        failures += found
    bug = os.environ.get("PAGEDKV_PORT_BUG")
    for f in failures[:20]:
        print(f)
    print(f"{len(runs)} files, {total} requests, {len(failures)} mismatches"
          + (f" (PAGEDKV_PORT_BUG={bug})" if bug else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
