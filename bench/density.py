#!/usr/bin/env python3
"""Density: how much memory many mounted packages cost (issue 14 point 4), default
`--sandbox strict`, every package a kit-built copy of bench/agents/bench-tiny under its own
name, built once into target/bench/density-agents and reused: the first --kit-built (20)
by pixell-kit (bench/build_agents.py), the others renamed copies of the first (the kit
writes the name in three files and no checksum; `pixell build` takes a second or more a
package here, 1,000 builds would take longer than the measurement).

* idle: --idle N packages (60) with `--idle-timeout 2`; once every report says `idle`, the
  proportional set size (PSS, /proc/<pid>/smaps_rollup) of the whole process tree — the
  runtime and every descendant — sampled 5 times.
* rolling: --rolling N packages (1,000) with `--idle-timeout 5`; once all are idle, a
  working set of 20 packages is called by 20 client threads (keep-alive, closed loop) for
  --duration s (120), the set moving on to the next 20 packages every --rotate s (10).
  Tree PSS sampled every second; every call must answer 200. With --at-startup K only K
  packages are given to `par serve`, the rest mounted through `POST /runtime/packages`
  20 at a time (either way a package sleeps right after its load under `--idle-timeout`,
  so a load keeps at most `--load-concurrency` packages awake).
* active: one package under `wrk -t2 -c32`; PSS of its worker, and of the worker with
  its jail (the package's processes: launcher, the jail's PID 1, zygote, worker).

Prints a markdown table (and with --json, every sample). Standard library plus `wrk`.

Usage: python3 bench/density.py [--par target/release/par] [--uv UV] [--only idle,rolling,active]
       [--idle 60] [--rolling 1000] [--working-set 20] [--duration 120] [--rotate 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import build_agents  # noqa: E402
from density_load import Rolling, mount_via_api  # noqa: E402
from density_report import table  # noqa: E402

MIB = 1024.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def package_names(count: int) -> list[str]:
    return [f"bench-tiny-{i:04d}" for i in range(1, count + 1)]


def build(out: Path, count: int, kit_built: int, jobs: int) -> list[Path]:
    """The first `kit_built` packages built by the kit (about a second each on this
    machine), the rest renamed copies of the first (bench/build_agents.py clone_renamed)."""
    names = package_names(count)
    kit = names[:max(1, min(count, kit_built))]
    build_agents.build_packages(out, [("bench-tiny", n, 0) for n in kit], jobs)
    for name in names[len(kit):]:
        if not (out / f"{name}.apkg").is_file():
            build_agents.clone_renamed(out / f"{kit[0]}.apkg", kit[0], name, out / f"{name}.apkg")
    return [out / f"{n}.apkg" for n in names]


# --- the process tree and its memory -------------------------------------------------

def children(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    """pid and every descendant (a process that exits meanwhile just drops out)."""
    return [p for p, _ in tree_depths(pid)]


def tree_depths(pid: int) -> list[tuple[int, int]]:
    """(pid, depth below `pid`) for pid and every descendant."""
    found, pending = [], [(pid, 0)]
    while pending:
        p, depth = pending.pop()
        found.append((p, depth))
        pending += [(c, depth + 1) for c in children(p)]
    return found


def program(pid: int) -> str:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return "?"
    return argv0.decode(errors="replace").rsplit("/", 1)[-1]


def pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    m = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def tree_pss(pid: int) -> tuple[float, float, int]:
    """(tree PSS MiB, the root's own PSS MiB, processes in the tree)."""
    pids = tree(pid)
    return sum(pss_kib(p) for p in pids) / MIB, pss_kib(pid) / MIB, len(pids)


def by_depth(pid: int) -> dict[str, list]:
    """'depth program' -> [processes, PSS MiB]: under strict, depth 1 is a package's jail
    launcher, 2 the jail's PID 1, 3 the zygote (or a fresh worker), 4 a forked worker."""
    kinds: dict[str, list] = {}
    for p, depth in tree_depths(pid):
        kind = kinds.setdefault(f"{depth} {program(p)}", [0, 0.0])
        kind[0] += 1
        kind[1] = round(kind[1] + pss_kib(p) / MIB, 1)
    return kinds


class Sampler(threading.Thread):
    """Samples a process tree's PSS every `every` seconds until stopped; keeps the
    by-depth breakdown of the largest sample."""

    def __init__(self, pid: int, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.samples = pid, every, []
        self.largest: dict[str, list] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            kinds = by_depth(self.pid)
            total = sum(k[1] for k in kinds.values())
            root = next((k[1] for name, k in kinds.items() if name.startswith("0 ")), 0.0)
            if not self.samples or total > max(s[0] for s in self.samples):
                self.largest = kinds
            self.samples.append((total, root, sum(k[0] for k in kinds.values())))
            self.done.wait(self.every)

    def stop(self) -> list[tuple[float, float, int]]:
        self.done.set()
        self.join()
        return self.samples


# --- the runtime under test ------------------------------------------------------------

class Par:
    def __init__(self, args, packages: list[Path], idle_timeout: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [args.par, "serve", "--listen", f"127.0.0.1:{self.port}",
                "--cache-dir", str(args.cache_dir), "--usage-db", "off", "--log-format", "json",
                "--uv", args.uv, "--sandbox", args.sandbox, "--idle-timeout", str(idle_timeout),
                "--worker-start", args.worker_start,
                *map(str, packages)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAR_")}
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def reports(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/runtime/packages", timeout=30) as r:
            return json.load(r)["packages"]

    def wait_states(self, count: int, states: set[str], limit: float) -> float:
        """Seconds until `count` packages are listed, each in one of `states`."""
        deadline = self.started + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"par exited {self.proc.returncode}; see {self.log}")
            try:
                reports = self.reports()
                if len(reports) == count and all(r["state"] in states for r in reports):
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"not all {count} packages {sorted(states)} within {limit:.0f} s; "
                         f"see {self.log}")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# --- scenarios -------------------------------------------------------------------------

def idle(args, packages: list[Path]) -> dict:
    par = Par(args, packages, 2, args.tmp / "idle.log")
    try:
        loaded = par.wait_states(len(packages), {"ready", "idle"}, args.load_limit)
        all_idle = par.wait_states(len(packages), {"idle"}, args.load_limit)
        time.sleep(1)  # the last stops finish
        samples = []
        for _ in range(5):
            samples.append(tree_pss(par.pid))
            time.sleep(1)
    finally:
        par.stop()
    return {"packages": len(packages), "loaded_s": round(loaded, 1),
            "all_idle_s": round(all_idle, 1),
            "tree_pss_mib": round(statistics.median(s[0] for s in samples), 1),
            "runtime_pss_mib": round(statistics.median(s[1] for s in samples), 1),
            "processes": samples[-1][2]}


def rolling(args, packages: list[Path]) -> dict:
    at_start = packages[:args.at_startup] if args.at_startup else packages
    par = Par(args, at_start, 5, args.tmp / "rolling.log")
    loading = Sampler(par.pid, every=2.0)
    loading.start()
    try:
        par.wait_states(len(at_start), {"ready", "idle"}, args.load_limit)
        mount_via_api(par, packages[len(at_start):], len(at_start), 20, args.load_limit)
        loaded = time.monotonic() - par.started
        all_idle = par.wait_states(len(packages), {"idle"}, args.load_limit)
        load_samples = loading.stop()
        time.sleep(1)
        idle_pss = tree_pss(par.pid)
        load = Rolling(par, [p.stem for p in packages], args.working_set, args.rotate)
        sampler = Sampler(par.pid)
        sampler.start()
        began = time.monotonic()
        load.run(args.duration)
        took = time.monotonic() - began
        samples = sampler.stop()
        wakes = par_metric(par, "par_package_wakes_total")
    finally:
        par.stop()
    first = sorted(load.first_call_ms)
    return {"packages": len(packages), "loaded_s": round(loaded, 1),
            "all_idle_s": round(all_idle, 1),
            "load_peak_tree_pss_mib": round(max(s[0] for s in load_samples), 1),
            "idle_tree_pss_mib": round(idle_pss[0], 1),
            "idle_runtime_pss_mib": round(idle_pss[1], 1),
            "calls_ok": load.ok, "calls_failed": load.failed,
            "calls_per_s": round(load.ok / took),
            "errors": load.errors[:5],
            "windows": int(args.duration // args.rotate), "working_set": args.working_set,
            "wakes": wakes,
            "first_call_ms_p50": round(statistics.median(first), 1),
            "first_call_ms_max": round(first[-1], 1),
            "tree_pss_mib_max": round(max(s[0] for s in samples), 1),
            "tree_pss_mib_median": round(statistics.median(s[0] for s in samples), 1),
            "runtime_pss_mib_max": round(max(s[1] for s in samples), 1),
            "processes_max": max(s[2] for s in samples),
            "largest_sample_by_depth": sampler.largest}


def par_metric(par: Par, name: str) -> float:
    with urllib.request.urlopen(f"{par.url}/metrics", timeout=30) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


def package_processes(runtime: int, worker: int) -> list[int]:
    """The worker's package: the runtime's child whose subtree holds the worker."""
    for child in children(runtime):
        pids = tree(child)
        if worker in pids:
            return pids
    return [worker]


def breakdown(pids: list[int]) -> list[str]:
    """'<program and first argument>: <PSS> MiB' per process, parents first."""
    out = []
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        what = " ".join(a.decode(errors="replace").rsplit("/", 1)[-1] for a in argv[:2] if a)
        out.append(f"{what}: {pss_kib(pid) / MIB:.1f} MiB")
    return out


def active(args, package: Path) -> dict:
    par = Par(args, [package], 0, args.tmp / "active.log")
    script = args.tmp / "echo.lua"
    script.write_text('wrk.method = "POST"\nwrk.body = \'{"n": 1}\'\n'
                      'wrk.headers["content-type"] = "application/json"\n')
    try:
        par.wait_states(1, {"ready"}, args.load_limit)
        url = f"{par.url}/agents/{package.stem}/invoke"
        wrk = subprocess.Popen(["wrk", "-t2", "-c32", f"-d{args.active_seconds}s", "-s",
                                str(script), url], stdout=subprocess.PIPE, text=True)
        worker_pss, package_pss, count, parts = [], [], 0, []
        time.sleep(1)
        while wrk.poll() is None:
            pids = package_processes(par.pid, par.reports()[0]["workers"][0])
            # The Python that serves calls: the deepest process (under fresh + strict
            # the report names the jail launcher, the runtime's child).
            worker = max(tree_depths(pids[0]), key=lambda pd: pd[1])[0]
            worker_pss.append(pss_kib(worker) / MIB)
            package_pss.append(sum(pss_kib(p) for p in pids) / MIB)
            count, parts = len(pids), breakdown(pids)
            time.sleep(1)
        out = wrk.stdout.read()
    finally:
        par.stop()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"calls_per_s": round(rate), "non_2xx": int(errors.group(1)) if errors else 0,
            "worker_pss_mib_max": round(max(worker_pss), 1),
            "package_pss_mib_max": round(max(package_pss), 1),
            "package_processes": count, "package_breakdown": parts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--par", default=str(REPO / "target" / "release" / "par"))
    ap.add_argument("--uv", default=os.environ.get("PAR_UV", "uv"))
    ap.add_argument("--sandbox", default="strict")
    ap.add_argument("--worker-start", default="auto", help="auto (the default), fork or fresh")
    ap.add_argument("--only", default="idle,rolling,active")
    ap.add_argument("--idle", type=int, default=60, help="packages in the idle scenario")
    ap.add_argument("--rolling", type=int, default=1000, help="packages in the rolling one")
    ap.add_argument("--working-set", type=int, default=20)
    ap.add_argument("--at-startup", type=int, default=0,
                    help="rolling: packages given to `par serve`; the rest are mounted "
                    "through POST /runtime/packages, 20 at a time (0: all at startup)")
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--rotate", type=float, default=10)
    ap.add_argument("--active-seconds", type=int, default=10)
    ap.add_argument("--load-limit", type=float, default=1800,
                    help="seconds a scenario's packages may take to load and go idle")
    ap.add_argument("--jobs", type=int, default=4, help="parallel package builds")
    ap.add_argument("--kit-built", type=int, default=20,
                    help="packages built by the kit; the others are renamed copies")
    ap.add_argument("--agents", type=Path, default=REPO / "target" / "bench" / "density-agents")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="PAR's cache (default: a new one per run)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1,000 packages' sockets
    packages = build(args.agents, max(args.idle, args.rolling), args.kit_built, args.jobs)
    args.tmp = Path(tempfile.mkdtemp(prefix="par-density-"))
    args.cache_dir = args.cache_dir or args.tmp / "cache"
    facts = {"load_avg_start": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    print(f"[density] logs in {args.tmp}; load average {facts['load_avg_start']}",
          file=sys.stderr)
    results = {}
    for name in only:
        began = time.monotonic()
        if name == "idle":
            results["idle"] = idle(args, packages[:args.idle])
        elif name == "rolling":
            results["rolling"] = rolling(args, packages[:args.rolling])
        elif name == "active":
            results["active"] = active(args, packages[0])
        else:
            ap.error(f"unknown scenario {name}")
        print(f"[density] {name}: {time.monotonic() - began:.0f} s, load average "
              f"{[round(x, 2) for x in os.getloadavg()]}: {json.dumps(results[name])}",
              file=sys.stderr, flush=True)
    facts["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(table(results))
    print(f"\n{json.dumps(facts)}")
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
