"""Load generators: wrk (closed loop, fixed duration) and hey (a fixed burst), plus a tiny
Server-Sent Events client that times the first event and the whole stream."""

from __future__ import annotations

import http.client
import json
import os
import re
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent.parent / "wrk" / "report.lua"


@dataclass
class Load:
    """One load run: throughput, latency percentiles (ms) and failed requests."""

    rps: float
    p50: float
    p99: float
    p999: float
    requests: int
    failed: int


def wrk(url: str, conns: int, seconds: float, method="GET", body="", accept="",
        warmup: float = 1.0) -> Load:
    """Warm-up run (discarded), then the measured run."""
    if warmup > 0:
        _wrk_once(url, conns, warmup, method, body, accept)
    return _wrk_once(url, conns, seconds, method, body, accept)


def _wrk_once(url, conns, seconds, method, body, accept) -> Load:
    env = dict(os.environ, WRK_METHOD=method, WRK_BODY=body, WRK_ACCEPT=accept)
    threads = 1 if conns == 1 else 2
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(LUA), url]
    out = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=seconds + 60).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary for {url}:\n{out}")
    s = json.loads(line[len("WRKJSON "):])
    errors = ("err_connect", "err_read", "err_write", "err_status", "err_timeout")
    failed = sum(s[k] for k in errors)
    return Load(rps=s["requests"] / (s["duration_us"] / 1e6), p50=s["p50_us"] / 1000,
                p99=s["p99_us"] / 1000, p999=s["p999_us"] / 1000, requests=s["requests"],
                failed=failed)


def median(runs: list[Load]) -> Load:
    """Field by field median of repeated runs (failures added up)."""
    pick = lambda field: statistics.median(getattr(r, field) for r in runs)  # noqa: E731
    return Load(rps=pick("rps"), p50=pick("p50"), p99=pick("p99"), p999=pick("p999"),
                requests=sum(r.requests for r in runs), failed=sum(r.failed for r in runs))


@dataclass
class Burst:
    """A fixed number of requests sent at once (hey)."""

    ok: int
    not_ok: int
    seconds: float
    p50: float
    p99: float


def hey_burst(url: str, count: int, body: str, timeout_s: int = 60) -> Burst:
    argv = ["hey", "-n", str(count), "-c", str(count), "-t", str(timeout_s), "-m", "POST",
            "-T", "application/json", "-d", body, url]
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=timeout_s + 120).stdout
    statuses = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors = 0
    if "Error distribution" in out:
        section = out.split("Error distribution:", 1)[1]
        errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", section, re.M))
    total = re.search(r"Total:\s+([\d.]+) secs", out)
    p50 = re.search(r"50%+ in ([\d.]+) secs", out)
    p99 = re.search(r"99%+ in ([\d.]+) secs", out)
    if total is None:
        raise RuntimeError(f"hey printed no summary:\n{out}")
    ok = statuses.get(200, 0)
    return Burst(ok=ok, not_ok=sum(statuses.values()) - ok + errors,
                 seconds=float(total.group(1)),
                 p50=float(p50.group(1)) * 1000 if p50 else float("nan"),
                 p99=float(p99.group(1)) * 1000 if p99 else float("nan"))


@dataclass
class Stream:
    """Median time to the first event (ms) and median events per second of whole streams."""

    first_ms: float
    events_per_s: float
    events: int


def sse(host: str, port: int, path: str, body: str, runs: int) -> Stream:
    firsts, rates, counts = [], [], []
    for i in range(runs + 1):
        first, total, events = _one_stream(host, port, path, body)
        if i == 0:
            continue  # warm-up
        firsts.append(first * 1000)
        rates.append(events / total)
        counts.append(events)
    return Stream(statistics.median(firsts), statistics.median(rates), min(counts))


def _one_stream(host, port, path, body):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    start = time.perf_counter()
    conn.request("POST", path, body=body.encode(),
                 headers={"content-type": "application/json", "accept": "text/event-stream"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"SSE {path} answered {resp.status}: {resp.read()[:300]!r}")
    first, received = None, bytearray()
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            break
        if first is None and b"data: " in chunk:
            first = time.perf_counter() - start
        received += chunk
        if b"event: done" in received[-len(chunk) - 16:]:
            break
    total = time.perf_counter() - start
    conn.close()
    events = received.count(b"data: ") - 1  # minus the `done` event
    return first or total, total, events
