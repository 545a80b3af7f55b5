#!/usr/bin/env python3
"""Runs `paged-kv check --req` on the Python port with each planted prefix-cache bug, over seeds
and both policies, and prints a table: bug, runs found, shrunk sizes, ops to the first divergence,
and the runs whose report did not reproduce (the repro sent to a fresh port and to the reference's
`replay` gives no differing reply). Std-only; run from the repository root after
`dotnet build -c Release src/PagedKv.Cli`.

    python3 ports/python/tools/bugtable.py [--seeds 1,2,3,4,5] [--jobs 2] [--window 256]
"""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CLI = ["dotnet", os.path.join(ROOT, "src/PagedKv.Cli/bin/Release/net10.0/PagedKv.Cli.dll")]
PORT = ["python3", os.path.join(ROOT, "ports/python/paged_kv.py")]
sys.path.insert(0, os.path.join(ROOT, "ports/python"))
from paged_kv import BUGS  # noqa: E402

ALLOCATOR_BUGS = {"scan-from-bottom", "shift-remove", "peak-misses-resurrection", "allocate-n-partial",
                  "stale-reverse-entry", "token-as-u64"}


def key(line):
    d = json.loads(line)
    return ("err", d["err"]) if "err" in d else ("ok", json.dumps(d["ok"], sort_keys=True))


def replies(command, requests, env=None):
    out = subprocess.run(command, input="\n".join(requests) + "\n", capture_output=True, text=True, env=env).stdout
    return out.splitlines()


def one(bug, policy, seed, window):
    with tempfile.TemporaryDirectory() as tmp:
        repro = os.path.join(tmp, "repro.jsonl")
        env = dict(os.environ, PAGEDKV_PORT_BUG=bug)
        impl = f"PAGEDKV_PORT_BUG={bug} exec python3 {PORT[1]}"
        p = subprocess.run(CLI + ["check", "--impl", impl, "--req", "--profile", policy, "--seed", str(seed),
                                  "--ops", "200000", "--window", str(window), "--repro", repro],
                           capture_output=True, text=True, timeout=900)
        text = p.stdout + p.stderr
        found = p.returncode == 1
        ops = re.search(r"DIVERGENCE after ([\d,]+) ops", text)
        shrunk = re.search(r"shrunk from (\d+) to (\d+) requests", text)
        requests = open(repro).read().splitlines() if os.path.exists(repro) else []
        reproduces = False
        if found and requests:
            a, b = replies(CLI + ["replay"], requests), replies(PORT, requests, env)
            reproduces = len(a) != len(b) or any(key(x) != key(y) for x, y in zip(a, b))
        return {"bug": bug, "policy": policy, "seed": seed, "rc": p.returncode, "found": found,
                "ops": int(ops.group(1).replace(",", "")) if ops else None,
                "from": int(shrunk.group(1)) if shrunk else None, "to": len(requests), "reproduces": reproduces,
                "verdict": next((l for l in text.splitlines() if l.startswith(("minimal", "the smallest", "depends", "not det"))), "")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    bugs = [b for b in BUGS if b not in ALLOCATOR_BUGS]
    runs = [(b, pol, int(s)) for b in bugs for pol in ("lifo", "lru") for s in args.seeds.split(",")]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda r: one(*r, args.window), runs))
    if args.json:
        for r in results:
            print(json.dumps(r))
    print("| bug | found | shrunk size (min–max) | ops to first divergence (min–max) | runs without a reproducing report |")
    print("|---|---:|---:|---:|---:|")
    for b in bugs:
        rs = [r for r in results if r["bug"] == b]
        ok = [r for r in rs if r["found"]]
        sizes = [r["to"] for r in ok]
        ops = [r["ops"] for r in ok if r["ops"] is not None]
        bad = sum(1 for r in rs if not (r["found"] and r["reproduces"]))
        span = lambda xs: f"{min(xs)}–{max(xs)}" if xs else "—"
        print(f"| `{b}` | {len(ok)}/{len(rs)} | {span(sizes)} | {span(ops)} | {bad} |")
    total_bad = sum(1 for r in results if not (r["found"] and r["reproduces"]))
    print(f"\n{len(results)} runs, {total_bad} without a reproducing report")
    return 1 if total_bad else 0


if __name__ == "__main__":
    sys.exit(main())
