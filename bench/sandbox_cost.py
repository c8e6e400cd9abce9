#!/usr/bin/env python3
"""What the jail costs: `--sandbox strict` against `--sandbox off`, alternating in one run.

Per mode and round, one fresh `par serve` with kit-minimal (the echo agent) and kit-escape:

* echo: calls/s, latency (p50/p99) and CPU µs per call (the runtime; the worker side:
  its jail processes and Python) of kit-minimal under wrk, keep-alive connections; on a
  busy shared machine CPU per call is the steadier measure of what the jail adds;
* wake: a worker's start as a caller sees it — `--idle-timeout 1` stops the package, the
  next call starts its worker (jail + interpreter + entrypoint import) and is answered;
* pss: proportional set size of one worker: its process and every descendant (under
  strict the launcher, the jail's PID 1 and Python; under off Python alone);
* egress: kit-escape downloads a file from a loopback server with urllib — under strict
  through the runtime's egress proxy (the jail's only way out; `--egress-allow` names the
  server), under off directly.

Modes alternate (strict, off, strict, off, ...) so drift of a shared machine hits both.
Standard library only, plus `wrk` (Debian). Usage:

    cargo build --release -p par-cli
    source /work/parenv.sh     # builds the fixtures; PAR_UV
    python3 bench/sandbox_cost.py --par target/release/par --uv "$PAR_UV" [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floor import cpu_seconds  # noqa: E402  (CPU of a process and its descendants)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "target" / "fixtures"
DOWNLOAD_MB = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body: dict | None = None, timeout: float = 120) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class FileServer:
    """A loopback HTTP server answering every GET with DOWNLOAD_MB of zeros."""

    def __init__(self) -> None:
        payload = b"\0" * (DOWNLOAD_MB << 20)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Par:
    """One `par serve` with the two fixtures."""

    def __init__(self, args, mode: str, cache: Path, file_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            args.par, "serve", "--listen", f"127.0.0.1:{self.port}", "--sandbox", mode,
            "--cache-dir", str(cache), "--uv", args.uv, "--usage-db", "off",
            "--log-format", "json", "--idle-timeout", "1",
            "--egress-allow", f"127.0.0.1:{file_port}",
            str(FIXTURES / "kit-minimal.apkg"), str(FIXTURES / "kit-escape.apkg"),
        ]
        env = {**os.environ, "PAR_LOG": "warn"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                packages = request(f"{self.url}/runtime/packages", timeout=5)["packages"]
                if len(packages) == 2 and all(p["state"] in ("ready", "idle") for p in packages):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("par serve did not get both packages ready in 300 s")

    def report(self, name: str) -> dict:
        packages = request(f"{self.url}/runtime/packages")["packages"]
        return next(p for p in packages if p["source"].endswith(f"/{name}.apkg"))

    def invoke(self, agent: str, body: dict) -> dict:
        return request(f"{self.url}/agents/{agent}/invoke", body)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def echo(par: Par, seconds: float, conns: int) -> dict:
    par.invoke("kit-minimal", {"n": 1})  # warm
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text('wrk.method = "POST"\nwrk.body = \'{"n": 1}\'\n'
                      'wrk.headers["content-type"] = "application/json"\n')
    before = cpu_seconds(par.proc.pid)
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(conns), "-d", f"{int(seconds)}s", "--latency", "-s", str(script),
         f"{par.url}/agents/kit-minimal/invoke"],
        capture_output=True, text=True, check=True).stdout
    after = cpu_seconds(par.proc.pid)
    script.unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    runtime_us, worker_us = ((a - b) * 1e6 / (rps * seconds) for a, b in zip(after, before))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": wrk_ms(out, "50%"), "p99_ms": wrk_ms(out, "99%"),
            "non_2xx": int(errors.group(1)) if errors else 0,
            "cpu_us_per_call": {"runtime": runtime_us, "worker_side": worker_us}}


def wrk_ms(out: str, pct: str) -> float:
    value, unit = re.search(rf"^\s*{re.escape(pct)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wake(par: Par, times: int) -> list[float]:
    """Seconds from a call to an idle kit-minimal to its answer."""
    took = []
    for _ in range(times):
        deadline = time.monotonic() + 30
        while par.report("kit-minimal")["state"] != "idle":
            if time.monotonic() > deadline:
                raise SystemExit("kit-minimal never went idle")
            time.sleep(0.1)
        started = time.perf_counter()
        par.invoke("kit-minimal", {"n": 1})
        took.append(time.perf_counter() - started)
    return took


def pss_kib(pid: int) -> int:
    total, pending = 0, [pid]
    while pending:
        p = pending.pop()
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
            total += int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))
            for task in Path(f"/proc/{p}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, AttributeError):
            continue
    return total


def worker_pss(par: Par) -> int:
    par.invoke("kit-minimal", {"n": 1})  # awake
    return pss_kib(par.report("kit-minimal")["workers"][0])


def egress(par: Par, file_port: int, mode: str, times: int) -> list[float]:
    """MB/s of a download by kit-escape (through the proxy under strict)."""
    rates = []
    for _ in range(times):
        data = par.invoke("kit-escape", {"try": "download", "proxy": mode == "strict",
                                         "url": f"http://127.0.0.1:{file_port}/blob"})["data"]
        assert data["bytes"] == DOWNLOAD_MB << 20, data
        rates.append(DOWNLOAD_MB / data["seconds"])
    return rates


def one_run(args, mode: str, cache: Path, files: FileServer) -> dict:
    par = Par(args, mode, cache, files.port)
    try:
        return {"mode": mode, "echo": echo(par, args.seconds, args.conns),
                "wake_s": wake(par, args.wakes), "pss_kib": worker_pss(par),
                "egress_mb_s": egress(par, files.port, mode, args.downloads)}
    finally:
        par.stop()


def summary(runs: list[dict]) -> dict:
    out = {}
    for mode in ("strict", "off"):
        mine = [r for r in runs if r["mode"] == mode]
        wakes = [w for r in mine for w in r["wake_s"]]
        out[mode] = {
            "echo_rps": statistics.median(r["echo"]["rps"] for r in mine),
            "echo_p50_ms": statistics.median(r["echo"]["p50_ms"] for r in mine),
            "echo_p99_ms": statistics.median(r["echo"]["p99_ms"] for r in mine),
            "echo_cpu_us_runtime": statistics.median(
                r["echo"]["cpu_us_per_call"]["runtime"] for r in mine),
            "echo_cpu_us_worker_side": statistics.median(
                r["echo"]["cpu_us_per_call"]["worker_side"] for r in mine),
            "non_2xx": sum(r["echo"]["non_2xx"] for r in mine),
            "wake_ms_median": 1000 * statistics.median(wakes),
            "wake_ms_min": 1000 * min(wakes),
            "worker_pss_mib": statistics.median(r["pss_kib"] for r in mine) / 1024,
            "download_mb_s": statistics.median(x for r in mine for x in r["egress_mb_s"]),
        }
    s, o = out["strict"], out["off"]
    out["strict_vs_off"] = {
        "echo_throughput_pct": round(100 * (s["echo_rps"] / o["echo_rps"] - 1), 1),
        "echo_worker_side_cpu_pct": round(
            100 * (s["echo_cpu_us_worker_side"] / o["echo_cpu_us_worker_side"] - 1), 1),
        "wake_added_ms": round(s["wake_ms_median"] - o["wake_ms_median"], 1),
        "pss_added_mib": round(s["worker_pss_mib"] - o["worker_pss_mib"], 1),
        "download_pct": round(100 * (s["download_mb_s"] / o["download_mb_s"] - 1), 1),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--par", default=str(REPO / "target/release/par"))
    ap.add_argument("--uv", default=os.environ.get("PAR_UV", "uv"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per echo run")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--wakes", type=int, default=5)
    ap.add_argument("--downloads", type=int, default=3)
    ap.add_argument("--cache-dir", default=str(REPO / "target" / "bench-sandbox-cache"))
    ap.add_argument("--json", help="also write the runs and summary here")
    args = ap.parse_args()
    cache = Path(args.cache_dir)
    files = FileServer()
    runs, load_start = [], os.getloadavg()
    for round_no in range(args.rounds):
        for mode in ("strict", "off"):
            print(f"round {round_no + 1}/{args.rounds}: {mode}", file=sys.stderr, flush=True)
            runs.append(one_run(args, mode, cache, files))
    result = {"load_avg_start": load_start, "load_avg_end": os.getloadavg(),
              "cpus": os.cpu_count(), "runs": runs, "summary": summary(runs)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("load_avg_start", "load_avg_end")}))
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
