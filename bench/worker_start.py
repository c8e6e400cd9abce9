"""Start to first answer of one worker, without the runtime or a jail: the Python side
alone, acting as the runtime on the worker protocol. `fresh`: start `python -u
par_worker.py`, accept its connection, READY, one CALL, its RESULT. `fork`: the same
after asking a running zygote (PAR_WORKER_ZYGOTE=1) for a worker (FORK).

Usage: python3 bench/worker_start.py [--rounds 20] [--root fixtures/agents/kit-minimal]
       [--python python3]
"""

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "..", "python", "par_worker.py")
H = struct.Struct(">IBQ")
CALL, FORK, READY, RESULT, FORKED = 1, 7, 10, 12, 19


def read(conn):
    head = b""
    while len(head) < 13:
        head += conn.recv(13 - len(head))
    n, kind, ident = H.unpack(head)
    body = b""
    while len(body) < n - 9:
        body += conn.recv(n - 9 - len(body))
    return kind, ident, body


def first_answer(conn):
    assert read(conn)[0] == READY
    body = json.dumps({"rid": "r", "tp": "", "p": {"text": "hello"}}).encode()
    conn.sendall(H.pack(len(body) + 9, CALL, 1) + body)
    assert read(conn)[0] == RESULT


def listener(path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(1)
    return s


def fresh_start(python, root, env, path):
    ls = listener(path)
    start = time.perf_counter()
    proc = subprocess.Popen([python, "-u", WORKER], cwd=root,
                            env={**env, "PAR_WORKER_SOCKET": path})
    conn, _ = ls.accept()
    first_answer(conn)
    took = (time.perf_counter() - start) * 1000
    conn.close()
    proc.wait()
    return took


def fork_start(control, path, ident):
    ls = listener(path)
    start = time.perf_counter()
    control.sendall(H.pack(len(path) + 9, FORK, ident) + path.encode())
    assert read(control)[0] == FORKED
    conn, _ = ls.accept()
    first_answer(conn)
    took = (time.perf_counter() - start) * 1000
    conn.close()
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--root", default=os.path.join(HERE, "..", "fixtures", "agents", "kit-minimal"))
    ap.add_argument("--python", default="python3")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    tmp = tempfile.mkdtemp()
    env = {"PATH": os.environ["PATH"], "PAR_WORKER_ROOT": root,
           "PAR_WORKER_ENTRY": "src.main:handler"}
    times = {"fresh": [], "fork": []}
    zpath = os.path.join(tmp, "z")
    zl = listener(zpath)
    zygote = subprocess.Popen([args.python, "-u", WORKER], cwd=root,
                              env={**env, "PAR_WORKER_SOCKET": zpath, "PAR_WORKER_ZYGOTE": "1"})
    control, _ = zl.accept()
    assert read(control)[0] == READY
    for i in range(args.rounds):  # alternating, so a busy moment hits both
        times["fresh"].append(fresh_start(args.python, root, env, os.path.join(tmp, f"f{i}")))
        times["fork"].append(fork_start(control, os.path.join(tmp, f"w{i}"), i))
    control.close()
    zygote.wait()
    print(json.dumps({"load_avg": os.getloadavg(), "python": args.python}))
    print(json.dumps({k: {"p50_ms": round(statistics.median(v), 1), "min_ms": round(min(v), 1),
                          "max_ms": round(max(v), 1)} for k, v in times.items()}))


if __name__ == "__main__":
    main()
