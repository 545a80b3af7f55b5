#!/usr/bin/env python3
"""Runs a command and prints one JSON line: its exit code, wall seconds and peak RSS (KiB, the
largest of it and the descendants it waited for), then its stdout and stderr excerpts. Used by
the hostile-port tests to bound time and memory at a seam the checker does not control."""
import json
import resource
import subprocess
import sys
import time

def cut(data):  # the start (where a report states its verdict) and the end of an output
    text = data.decode("utf-8", "replace")
    return text if len(text) <= 60000 else text[:50000] + "\n…\n" + text[-10000:]


start = time.monotonic()
p = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True)
wall = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": p.returncode, "wall_s": round(wall, 2), "peak_rss_kib": peak,
                  "stdout": cut(p.stdout), "stderr": cut(p.stderr)}))
