#!/usr/bin/env python3
"""What the jail itself adds to starting a program: the same short Python program
(`python -c "import asyncio, json, threading"`, the worker's heavy imports) started
directly, through the small launcher `par-jail` and through `par __jail` (the runtime's
own binary), alternating, N rounds. Wall time and CPU time (user + system of the whole
jail: launcher, the jail's PID 1 and Python) per start.

The jail spec is the one the runtime itself builds: `par serve` runs kit-minimal under
`--sandbox strict`, the spec is read from its launcher's environment
(`/proc/<pid>/environ`, `PAR_JAIL_SPEC`), and only the program is replaced (network
`none`: the egress hand-over needs the runtime on the other end). Variants without
cgroups show what creating the jail's cgroups costs.

Usage: python3 bench/jail_start.py [--par target/release/par] [--rounds 30]
Needs the fixtures (scripts/build-fixtures.py) and uv (PAR_UV or scripts/ensure-uv.sh).
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROGRAM = ["-c", "import asyncio, json, threading"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def captured_spec(par, uv, cache):
    """Starts a runtime, waits for kit-minimal to answer, reads its launcher's spec."""
    port = free_port()
    proc = subprocess.Popen(
        [par, "serve", "--listen", f"127.0.0.1:{port}", "--cache-dir", cache,
         "--usage-db", "off", "--uv", uv, str(REPO / "target/fixtures/kit-minimal.apkg")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/agents/kit-minimal/invoke", data=b"{}",
                    headers={"content-type": "application/json"})
                if urllib.request.urlopen(req, timeout=5).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("kit-minimal never answered")
            time.sleep(0.2)
        for pid in children(proc.pid):
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            found = dict(e.split(b"=", 1) for e in env if b"=" in e)
            if b"PAR_JAIL_SPEC" in found:
                return json.loads(found[b"PAR_JAIL_SPEC"]), found[b"PAR_JAIL_BUILD"].decode()
        raise SystemExit("no launcher below the runtime")
    finally:
        proc.terminate()
        proc.wait()


def children(pid):
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def variants(par, spec, build):
    python = spec["env_dir"] + "/bin/python"
    spec = dict(spec, network="none", exec=dict(spec["exec"], program=python, args=PROGRAM))
    no_cgroups = dict(spec, pids_cgroup=None,
                      cgroups={"v2": None, "v1_pids": None, "v1_memory": None})
    small = str(Path(par).with_name("par-jail"))

    def env(s):
        return {"PAR_JAIL_SPEC": json.dumps(s), "PAR_JAIL_BUILD": build}

    return {
        "direct": ([python, *PROGRAM], {}),
        "par-jail": ([small, "__jail"], env(spec)),
        "par-jail, no cgroups": ([small, "__jail"], env(no_cgroups)),
        "par __jail": ([par, "__jail"], env(spec)),
    }


def one(command, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--par", default=str(REPO / "target/release/par"))
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    uv = os.environ.get("PAR_UV") or subprocess.check_output(
        ["bash", str(REPO / "scripts/ensure-uv.sh")], text=True).strip()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as cache:
        spec, build = captured_spec(args.par, uv, cache)
        runs = variants(args.par, spec, build)
        took = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, (command, env) in runs.items():
                took[name].append(one(command, env))
    print("| start of `python -c 'import asyncio, json, threading'` | wall p50 ms | wall min ms"
          " | CPU p50 ms | wall p50 − direct |")
    print("| --- | ---: | ---: | ---: | ---: |")
    direct = statistics.median(w for w, _ in took["direct"])
    for name, samples in took.items():
        walls = sorted(w for w, _ in samples)
        cpus = sorted(c for _, c in samples)
        print(f"| {name} | {statistics.median(walls):.1f} | {walls[0]:.1f} | "
              f"{statistics.median(cpus):.1f} | {statistics.median(walls) - direct:+.1f} |")
    print(json.dumps({"rounds": args.rounds, "load_avg_start": load_start,
                      "load_avg_end": os.getloadavg()}))


if __name__ == "__main__":
    main()
