"""Serving scenarios: one PAR with the fixture agents, each measured beside its baseline
(the thin Rust→worker server, uvicorn alone, a plain static server) in the same run."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from .load import hey_burst, median, sse, wrk
from .procs import PeakRss, Server, children, free_port, mib, rss_kb
from .report import Row
from .setup import Ctx, installed, par_env, start_par, start_thin

ECHO = [  # (label, agent, body)
    ("sync", "kit-minimal", '{"text":"hello"}'),
    ("async", "kit-async", '{"sleep":0}'),
]
CONCURRENCY = (1, 32, 256)
SLOW_CALLS = 2000
SLOW_BURSTS = 3  # RSS after the first and the last shows whether memory keeps growing


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


def load_rows(name: str, par, base, unit="calls/s", note="") -> list[Row]:
    if par.failed or base.failed:
        note = f"{note}; failed: PAR {par.failed}, baseline {base.failed}".lstrip("; ")
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
            pars, bases = [], []
            with PeakRss([st.par.pid]) as peak:
                for _ in range(ctx.repeat):  # alternate, so both see the same slots
                    pars.append(wrk(st.par.base + path, c, ctx.seconds, "POST", body))
                    bases.append(wrk(st.thin[agent].base + path, c, ctx.seconds, "POST", body))
            facts[f"par_rss_peak_echo_{label}_c{c}_mib"] = mib(peak.peak)
            par, base = median(pars), median(bases)
            ratios = sorted(p.rps / b.rps for p, b in zip(pars, bases))
            note = "" if ctx.repeat == 1 else (
                f"median of {ctx.repeat} runs each; ratio {ratios[0]:.2f}–{ratios[-1]:.2f}")
            rows += load_rows(f"echo {label} c={c}", par, base, note=note)
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
    """Bursts of 2,000 calls at once, each sleeping 1 s, on a PAR of its own with the
    per-package limit raised."""
    log(f"{SLOW_CALLS} concurrent slow calls")
    par = start_par(ctx, "par-slow", [ctx.fixtures / "kit-async.apkg"], st.cache,
                    extra=["--max-concurrent-calls", "4000"], env=par_env())
    par.wait_ok("GET", "/runtime/ready", timeout=120)
    workers = par.json("/runtime/packages")["packages"][0]["workers"]
    thin = st.thin["kit-async"]
    body, path = '{"sleep":1}', "/agents/kit-async/invoke"
    r = {}
    for key, server, worker_pids in (("par", par, workers), ("thin", thin, children(thin.pid))):
        before, after = rss_kb(server.pid), []
        with PeakRss([server.pid]) as peak, PeakRss(worker_pids) as wpeak:
            bursts = []
            for _ in range(SLOW_BURSTS):
                bursts.append(hey_burst(server.base + path, SLOW_CALLS, body))
                time.sleep(1)
                after.append(rss_kb(server.pid))
        r[key] = dict(ok=sum(b.ok for b in bursts), bad=sum(b.not_ok for b in bursts),
                      wall=max(b.seconds for b in bursts), p99=max(b.p99 for b in bursts),
                      before=mib(before), peak=mib(peak.peak), first=mib(after[0]),
                      last=mib(after[-1]), worker=mib(wpeak.peak))
    par.stop()
    ctx.started.remove(par)
    p, t = r["par"], r["thin"]
    name = f"{SLOW_CALLS} × sleep 1 s"
    n = SLOW_BURSTS
    return [
        Row(name, f"succeeded (of {n} × {SLOW_CALLS})", p["ok"], t["ok"]),
        Row(name, "failed", p["bad"], t["bad"]),
        Row(name, "wall s (worst burst)", p["wall"], t["wall"]),
        Row(name, "p99 ms (worst burst)", p["p99"], t["p99"]),
        Row(name, "host RSS before MiB", p["before"], t["before"]),
        Row(name, "host RSS after burst 1 MiB", p["first"], t["first"]),
        Row(name, f"host RSS after burst {n} MiB", p["last"], t["last"]),
        Row(name, "host RSS peak MiB", p["peak"], t["peak"]),
        Row(name, "worker RSS peak MiB", p["worker"], t["worker"]),
    ]


def tuned(ctx: Ctx, st: Stage) -> list[Row]:
    """What-if, no code changed: PAR with PAR_LOG=warn, so without the per-call
    `call finished` log line (formatting, redaction, one write per call). Baselines are
    measured again beside it."""
    names = ["kit-minimal", "kit-async"]
    par = start_par(ctx, "par-tuned", [ctx.fixtures / f"{n}.apkg" for n in names], st.cache,
                    env=par_env(PAR_LOG="warn"))
    par.wait_ok("GET", "/runtime/ready", timeout=120)
    tag = "PAR_LOG=warn"
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
    par.stop()
    ctx.started.remove(par)
    return rows
