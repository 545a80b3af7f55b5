#!/usr/bin/env python3
"""A hostile port for check's tests: a proxy in front of a real port (the command after --) that
misbehaves at request N of its lifetime (hello counts as request 1). Std-only Python 3.11.

    hostile.py MODE N [ARG] -- INNER COMMAND...

MODE: exit (exits 3 before answering N), no-read (stops reading stdin after N), silent (reads,
never answers from N on), trickle (answers N one byte per 0.5 s, never a newline), endless (an
endless line at N), huge (answers N with ARG bytes: the reply padded with spaces), stderr-flood
(ARG bytes on stderr without a newline at N, then answers), duplicate (answers N twice), child
(forks a child that holds stdout for 60 s, then exits), empty (an empty line for N), no-newline
(answers N without a newline, then nothing), nan (answers N with {"ok":NaN}), wrong (answers N
with {"ok":12345}), corrupt-admit (every admission that reused tokens answers one computed token
more: wrong by content, not by lifetime), hello-malformed ({"ok":{}}), hello-protocol (ARG as the
protocol value, raw JSON).
"""
import os
import subprocess
import sys
import time


def main():
    sep = sys.argv.index("--")
    mode, n = sys.argv[1], int(sys.argv[2])
    arg = sys.argv[3] if sep > 3 else None
    inner = subprocess.Popen(sys.argv[sep + 1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    out = sys.stdout.buffer

    def ask(line):
        inner.stdin.write(line)
        inner.stdin.flush()
        return inner.stdout.readline()

    def send(data):
        out.write(data)
        out.flush()

    count = 0
    for line in sys.stdin.buffer:
        count += 1
        if mode == "hello-malformed" and b'"hello"' in line:
            send(b'{"ok":{}}\n'); continue
        if mode == "hello-protocol" and b'"hello"' in line:
            send(b'{"ok":{"protocol":' + arg.encode() + b',"profiles":["lifo"],"features":["state","hash","alloc"]}}\n'); continue
        reply = ask(line)
        if mode == "corrupt-admit" and b'"admitted":true' in reply and b'"computed":0' not in reply:
            i = reply.index(b'"computed":') + len(b'"computed":')
            j = i
            while reply[j:j + 1].isdigit():
                j += 1
            reply = reply[:i] + str(int(reply[i:j]) + 1).encode() + reply[j:]
        if count < n or mode == "corrupt-admit":
            send(reply); continue
        if mode == "exit":
            sys.exit(3)
        if mode == "no-read":
            send(reply); time.sleep(60); sys.exit(0)
        if mode == "silent":
            continue
        if mode == "trickle":
            for b in reply[:-1] * 1000:
                send(bytes([b])); time.sleep(0.5)
        if mode == "endless":
            chunk = b" " * 65536
            while True:
                send(chunk)
        if mode == "huge" and count == n:
            send(reply[:-1] + b" " * int(arg) + b"\n"); continue
        if mode == "stderr-flood" and count == n:
            err = sys.stderr.buffer
            chunk = b"x" * 65536
            for _ in range(int(arg) // len(chunk)):
                err.write(chunk)
            err.flush()
            send(reply); continue
        if mode == "duplicate":
            send(reply if count != n else reply + reply); continue
        if mode == "child":
            if os.fork() == 0:
                time.sleep(60); os._exit(0)
            os._exit(0)
        if mode == "empty":
            send(b"\n" if count == n else reply); continue
        if mode == "no-newline":
            send(reply[:-1]); time.sleep(60); sys.exit(0)
        if mode == "nan":
            send(b'{"ok":NaN}\n' if count == n else reply); continue
        if mode == "wrong":
            send(b'{"ok":12345}\n' if count == n else reply); continue
        send(reply)


if __name__ == "__main__":
    main()
