"""Serving scenarios: one PAR with the fixture agents, each measured beside its baseline
(the thin Rust→worker server, uvicorn alone, a plain static server) in the same run."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from .load import hey_burst, sse, wrk
from .procs import PeakRss, Server, children, free_port, mib, rss_kb
from .report import Row
from .setup import Ctx, installed, par_env, start_par, start_thin

ECHO = [  # (label, agent, body)
    ("sync", "kit-minimal", '{"text":"hello"}'),
    ("async", "kit-async", '{"sleep":0}'),
]
CONCURRENCY = (1, 32, 256)
SLOW_CALLS = 2000


@dataclass
class Stage:
    """The servers the serving scenarios share."""

    par: Server
    thin: dict  # agent -> Server
    uvicorn: Server
    cache: object


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def stage(ctx: Ctx) -> Stage:
    cache = ctx.new_dir("cache-")
    names = ["kit-minimal", "kit-async", "kit-stream", "kit-rest"]
    par = start_par(ctx, "par-main", [ctx.fixtures / f"{n}.apkg" for n in names], cache,
                    env=par_env())
    seconds = par.wait_ok("GET", "/runtime/ready", timeout=300)
    log(f"PAR ready in {seconds:.1f} s (fresh cache: environments built)")
    thin = {}
    rest = installed(par, cache, "kit-rest")
    for name in names[:3]:
        ui = rest.root / "dist" / "ui" if name == "kit-minimal" else None
        thin[name] = start_thin(ctx, f"thin-{name}", installed(par, cache, name), ui=ui)
    port = free_port()
    argv = [str(rest.python), str(ctx.repo / "bench" / "uvicorn_direct.py"), str(rest.root),
            "src.rest:mount", str(port)]
    uv = Server("uvicorn-direct", argv, ctx.tmp / "uvicorn-direct.log", port)
    ctx.started.append(uv)
    for server in [*thin.values()]:
        server.wait_ok("POST", "/agents/x/invoke", b"{}", timeout=60)
    uv.wait_ok("GET", "/api/hello", timeout=60)
    return Stage(par, thin, uv, cache)


def load_rows(name: str, par, base, unit="calls/s") -> list[Row]:
    note = ""
    if par.failed or base.failed:
        note = f"failed: PAR {par.failed}, baseline {base.failed}"
    return [
        Row(name, unit, par.rps, base.rps, note),
        Row(name, "p50 ms", par.p50, base.p50),
        Row(name, "p99 ms", par.p99, base.p99),
        Row(name, "p99.9 ms", par.p999, base.p999),
    ]


def echo(ctx: Ctx, st: Stage, facts: dict) -> list[Row]:
    rows = []
    for label, agent, body in ECHO:
        path = f"/agents/{agent}/invoke"
        p50 = {}
        for c in CONCURRENCY:
            log(f"echo {label} c={c}")
            with PeakRss([st.par.pid]) as peak:
                par = wrk(st.par.base + path, c, ctx.seconds, "POST", body)
            base = wrk(st.thin[agent].base + path, c, ctx.seconds, "POST", body)
            facts[f"par_rss_peak_echo_{label}_c{c}_mib"] = mib(peak.peak)
            rows += load_rows(f"echo {label} c={c}", par, base)
            p50[c] = (par.p50, base.p50)
        over = (p50[1][0] - p50[1][1]) * 1000
        rows.append(Row(f"echo {label} c=1", "host overhead p50 µs", over, None,
                        "PAR p50 − thin p50"))
    return rows


def rest(ctx: Ctx, st: Stage) -> list[Row]:
    rows = []
    for c in (1, 32):
        log(f"REST c={c}")
        par = wrk(st.par.base + "/agents/kit-rest/api/hello", c, ctx.seconds)
        base = wrk(st.uvicorn.base + "/api/hello", c, ctx.seconds)
        rows += load_rows(f"REST GET c={c}", par, base, "req/s")[:3]
    return rows


def streaming(ctx: Ctx, st: Stage) -> list[Row]:
    log("SSE n=1000")
    body = '{"n":1000,"gap":0}'
    path = "/agents/kit-stream/invoke"
    par = sse("127.0.0.1", st.par.port, path, body, runs=5)
    base = sse("127.0.0.1", st.thin["kit-stream"].port, path, body, runs=5)
    note = "" if par.events == base.events == 1000 else f"events {par.events}/{base.events}"
    return [
        Row("SSE 1000 items", "first event ms", par.first_ms, base.first_ms, note),
        Row("SSE 1000 items", "events/s", par.events_per_s, base.events_per_s),
    ]


def ui(ctx: Ctx, st: Stage) -> list[Row]:
    log("UI static c=32")
    par = wrk(st.par.base + "/agents/kit-rest/ui/app.js", 32, ctx.seconds)
    base = wrk(st.thin["kit-minimal"].base + "/ui/app.js", 32, ctx.seconds)
    return load_rows("UI app.js c=32", par, base, "req/s")[:3]


def slow_calls(ctx: Ctx, st: Stage) -> list[Row]:
    """2,000 calls at once, each sleeping 1 s, on a PAR of its own with the limit raised."""
    log(f"{SLOW_CALLS} concurrent slow calls")
    par = start_par(ctx, "par-slow", [ctx.fixtures / "kit-async.apkg"], st.cache,
                    extra=["--max-concurrent-calls", "4000"], env=par_env())
    par.wait_ok("GET", "/runtime/ready", timeout=120)
    workers = par.json("/runtime/packages")["packages"][0]["workers"]
    thin = st.thin["kit-async"]
    body, path = '{"sleep":1}', "/agents/kit-async/invoke"
    result = {}
    for key, server, worker_pids in (("par", par, workers), ("thin", thin, children(thin.pid))):
        before = rss_kb(server.pid)
        with PeakRss([server.pid]) as peak, PeakRss(worker_pids) as wpeak:
            burst = hey_burst(server.base + path, SLOW_CALLS, body)
        time.sleep(2)
        result[key] = (burst, before, peak.peak, rss_kb(server.pid), wpeak.peak)
    par.stop()
    ctx.started.remove(par)
    p, t = result["par"], result["thin"]
    name = f"{SLOW_CALLS} × sleep 1 s"
    return [
        Row(name, "succeeded", p[0].ok, t[0].ok),
        Row(name, "failed", p[0].not_ok, t[0].not_ok),
        Row(name, "wall s", p[0].seconds, t[0].seconds),
        Row(name, "p99 ms", p[0].p99, t[0].p99),
        Row(name, "host RSS before MiB", mib(p[1]), mib(t[1])),
        Row(name, "host RSS peak MiB", mib(p[2]), mib(t[2])),
        Row(name, "host RSS after MiB", mib(p[3]), mib(t[3])),
        Row(name, "worker RSS peak MiB", mib(p[4]), mib(t[4])),
    ]


def tuned(ctx: Ctx, st: Stage) -> list[Row]:
    """What-if, no code changed: PAR with PAR_LOG=warn (no per-call log line, so no
    redaction of it) and, when the shim was built, TCP_NODELAY forced on accepted
    connections (bench/whatif/nodelay.c). Baselines measured again beside it."""
    env = par_env(PAR_LOG="warn")
    if ctx.nodelay_shim:
        env["LD_PRELOAD"] = str(ctx.nodelay_shim)
    names = ["kit-minimal", "kit-async", "kit-rest"]
    par = start_par(ctx, "par-tuned", [ctx.fixtures / f"{n}.apkg" for n in names], st.cache,
                    env=env)
    par.wait_ok("GET", "/runtime/ready", timeout=120)
    tag = "tuned: log=warn" + (" + nodelay" if ctx.nodelay_shim else "")
    rows = []
    for label, agent, body in ECHO:
        path = f"/agents/{agent}/invoke"
        p50 = {}
        for c in (1, 32):
            log(f"{tag}: echo {label} c={c}")
            p = wrk(par.base + path, c, ctx.seconds, "POST", body)
            b = wrk(st.thin[agent].base + path, c, ctx.seconds, "POST", body)
            rows += load_rows(f"echo {label} c={c} ({tag})", p, b)[:3]
            p50[c] = (p.p50, b.p50)
        rows.append(Row(f"echo {label} c=1 ({tag})", "host overhead p50 µs",
                        (p50[1][0] - p50[1][1]) * 1000, None, "PAR p50 − thin p50"))
    if ctx.nodelay_shim:
        for c in (1, 32):
            log(f"{tag}: REST c={c}")
            p = wrk(par.base + "/agents/kit-rest/api/hello", c, ctx.seconds)
            b = wrk(st.uvicorn.base + "/api/hello", c, ctx.seconds)
            rows += load_rows(f"REST GET c={c} ({tag})", p, b, "req/s")[:3]
        log(f"{tag}: UI c=32")
        p = wrk(par.base + "/agents/kit-rest/ui/app.js", 32, ctx.seconds)
        b = wrk(st.thin["kit-minimal"].base + "/ui/app.js", 32, ctx.seconds)
        rows += load_rows(f"UI app.js c=32 ({tag})", p, b, "req/s")[:3]
    par.stop()
    ctx.started.remove(par)
    return rows
