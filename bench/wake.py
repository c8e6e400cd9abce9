"""Wake of an idle package to its first answer: `par serve --idle-timeout 1` with
kit-minimal, then N times: wait until the package reports `idle` (its worker stopped),
time one call (the wake starts a worker for the already-built environment and the call
waits for it), and read the runtime's own `par_package_wake_seconds`.

With --restart: instead of idling, kill the package's worker (SIGKILL) N times and time
each replacement to its first answer (a forked worker, or with --worker-start fresh a
new interpreter): the start-to-first-call of a worker for an already-built environment.

Several configurations in one run (comma-separated lists; every combination) alternate
round by round, so a busy moment of a shared machine hits each of them: the wake keeps
one server per configuration, idle side by side; --restart starts one per round each.
Prints a markdown table, then every time and the load average as JSON.

Usage: python3 bench/wake.py [--par target/release/par] [--rounds 20]
                             [--sandbox strict|off|strict,off]
                             [--worker-start fork|fresh|fork,fresh] [--restart]
Needs the fixtures built (scripts/build-fixtures.py) and uv (PAR_UV or scripts/ensure-uv.sh).
"""

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read()


def invoke(base):
    req = urllib.request.Request(
        f"{base}/agents/kit-minimal/invoke",
        data=b'{"n":1}',
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200, r.status
        return r.read()


def state(base):
    _, body = get(f"{base}/runtime/packages")
    for p in json.loads(body)["packages"]:
        if p.get("name") == "kit-minimal":
            return p["state"]
    return None


def wait_for(predicate, limit=60.0):
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.02)


def configs(args):
    """(par binary, sandbox, worker start): every combination of the comma-separated lists."""
    return [(p, s, w) for p in args.par.split(",") for s in args.sandbox.split(",")
            for w in args.worker_start.split(",")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--par", default="target/release/par",
                    help="a par binary, or several comma-separated (compared side by side)")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--sandbox", default="strict", help="strict, off or both: strict,off")
    ap.add_argument("--worker-start", default="auto",
                    help="auto (the default), fork, fresh, or several: fork,fresh")
    ap.add_argument("--restart", action="store_true")
    args = ap.parse_args()
    uv = os.environ.get("PAR_UV") or subprocess.check_output(
        ["bash", "scripts/ensure-uv.sh"], text=True
    ).strip()
    load_start = os.getloadavg()
    pairs = configs(args)
    times = {pair: [] for pair in pairs}
    metrics = {pair: b"" for pair in pairs}
    with tempfile.TemporaryDirectory() as cache:
        if args.restart:
            # One crash per server: a pool's second restart in a minute waits a backoff.
            for _ in range(args.rounds):
                for pair in pairs:  # alternating, so a busy moment hits every config
                    with serving(pair, uv, cache, restart=True) as base:
                        times[pair].append(restart_to_answer(base))
        else:
            with contextlib.ExitStack() as stack:
                # A cache each: two servers side by side never share one.
                bases = {pair: stack.enter_context(
                    serving(pair, uv, os.path.join(cache, str(n))))
                    for n, pair in enumerate(pairs)}
                for _ in range(args.rounds):
                    for pair in pairs:
                        times[pair].append(wake_to_answer(bases[pair]))
                for pair in pairs:
                    _, metrics[pair] = get(f"{bases[pair]}/metrics")
    what = "restart" if args.restart else "wake"
    print(f"| {what}: par | sandbox | worker start | rounds | p50 ms | min ms | max ms |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for (par, sandbox, start), took in times.items():
        took.sort()
        print(f"| {par} | {sandbox} | {start} | {len(took)} | {statistics.median(took):.1f} | "
              f"{took[0]:.1f} | {took[-1]:.1f} |")
    for pair in pairs:
        lines = [l for l in metrics[pair].decode().splitlines()
                 if l.startswith(("par_package_wake_seconds_sum",
                                  "par_package_wake_seconds_count"))]
        if lines:
            print(f"runtime's own wake metric, {' '.join(pair)}: {'; '.join(lines)}")
    print(json.dumps({"load_avg_start": load_start, "load_avg_end": os.getloadavg(),
                      "ms": {"|".join(k): v for k, v in times.items()}}))


def wake_to_answer(base):
    """Wait until the package is idle, then time one call (the call wakes it)."""
    wait_for(lambda: state(base) == "idle")
    time.sleep(0.3)  # let the stop finish: measure a start, not a stop
    start = time.perf_counter()
    invoke(base)
    return (time.perf_counter() - start) * 1000


@contextlib.contextmanager
def serving(pair, uv, cache, restart=False):
    par, sandbox, worker_start = pair
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [par, "serve", "--listen", f"127.0.0.1:{port}", "--cache-dir", cache,
         "--uv", uv, "--sandbox", sandbox, "--worker-start", worker_start,
         "--idle-timeout", "0" if restart else "1",
         "target/fixtures/kit-minimal.apkg"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _ready(base), 300)
        yield base
    finally:
        server.terminate()
        server.wait(30)


def workers(base):
    _, body = get(f"{base}/runtime/packages")
    for p in json.loads(body)["packages"]:
        if p.get("name") == "kit-minimal":
            return p.get("workers") or []
    return []


def restart_to_answer(base):
    """Kill the worker, then time until a call is answered by its replacement."""
    invoke(base)
    old = workers(base)
    time.sleep(0.2)
    start = time.perf_counter()
    os.kill(old[0], 9)
    while True:
        try:
            body = json.loads(invoke(base))
            if body["data"]["pid"] is not None and workers(base) != old:
                return (time.perf_counter() - start) * 1000
        except urllib.error.HTTPError:
            pass  # the call raced the crash: worker_crashed, try again
        time.sleep(0.001)


def _ready(base):
    try:
        return get(f"{base}/runtime/ready")[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
