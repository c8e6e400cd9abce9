"""Start-up and memory scenarios: each starts its own PAR processes."""

from __future__ import annotations

import statistics
import time

from .load import wrk
from .procs import PeakRss, children, mib, rss_kb
from .report import Row
from .serving import log
from .setup import Ctx, installed, par_env, start_par, start_thin

SIZES = ("1mb", "30mb")
COLD_RUNS, WARM_RUNS = 2, 3
PACKAGE_COUNTS = (1, 10, 50)


def first_call(ctx: Ctx, name: str, cache, keep=False):
    """Seconds from starting `par serve` to the first 200 from the agent; the server is
    stopped unless `keep`."""
    apkg = ctx.agents / f"{name}.apkg"
    par = start_par(ctx, f"par-start-{name}", [apkg], cache, env=par_env())
    seconds = par.wait_ok("POST", f"/agents/{name}/invoke", b"{}", timeout=300)
    if not keep:
        par.stop()
        ctx.started.remove(par)
    return seconds, par


def cold_start(ctx: Ctx) -> list[Row]:
    log("cold start: priming the uv cache")
    first_call(ctx, "bench-size-1mb", ctx.new_dir("prime-"))
    rows = []
    warm_cache = None
    for size in SIZES:
        name = f"bench-size-{size}"
        log(f"cold start {size}")
        cold = []
        for _ in range(COLD_RUNS):
            warm_cache = ctx.new_dir(f"cold-{size}-")
            cold.append(first_call(ctx, name, warm_cache)[0] * 1000)
        warm = [first_call(ctx, name, warm_cache)[0] * 1000 for _ in range(WARM_RUNS)]
        base = thin_start(ctx, name, warm_cache) if size == SIZES[0] else None
        rows.append(Row(f"start {size} package", "warm: serve → first call ms",
                        statistics.median(warm), base,
                        "baseline: thin server + worker on the same env" if base else ""))
        rows.append(Row(f"start {size} package", "cold env: serve → first call ms",
                        statistics.median(cold), None, "new env, six from warm uv cache"))
    return rows


def thin_start(ctx: Ctx, name: str, cache) -> float:
    """The floor: the thin server starting one worker on PAR's extracted package and env."""
    _, par = first_call(ctx, name, cache, keep=True)
    pkg = installed(par, cache, name)
    par.stop()
    ctx.started.remove(par)
    times = []
    for _ in range(WARM_RUNS):
        thin = start_thin(ctx, f"thin-start-{name}", pkg)
        times.append(thin.wait_ok("POST", "/agents/x/invoke", b"{}", timeout=60) * 1000)
        thin.stop()
        ctx.started.remove(thin)
    return statistics.median(times)


def memory(ctx: Ctx) -> list[Row]:
    cache = ctx.new_dir("mem-")
    rows = []
    for n in PACKAGE_COUNTS:
        log(f"memory with {n} packages")
        sources = [ctx.agents / f"bench-tiny-{i:02d}.apkg" for i in range(1, n + 1)]
        par = start_par(ctx, f"par-mem-{n}", sources, cache, env=par_env())
        ready = par.wait_ok("GET", "/runtime/ready", timeout=300)
        reports = par.json("/runtime/packages")["packages"]
        workers = [pid for r in reports for pid in r["workers"]]
        base = thin_memory(ctx, par, cache) if n == 1 else None
        time.sleep(1)
        idle = rss_kb(par.pid)
        per_worker = statistics.mean(rss_kb(p) for p in workers)
        with PeakRss([par.pid]) as peak:
            load = wrk(par.base + "/agents/bench-tiny-01/invoke", 32, 2, "POST", '{"a":1}',
                       warmup=0)
        name = f"memory {n} package{'s' if n > 1 else ''}"
        rows += [
            Row(name, "runtime RSS idle MiB", mib(idle), base and base[0]),
            Row(name, "runtime RSS under load MiB", mib(peak.peak), base and base[1],
                f"c=32 echo, {load.rps:,.0f} calls/s"),
            Row(name, "worker RSS MiB (mean)", mib(per_worker), base and base[2],
                f"{len(workers)} workers"),
            Row(name, "serve → ready ms", ready * 1000, None, "warm env"),
        ]
        par.stop()
        ctx.started.remove(par)
    return rows


def thin_memory(ctx: Ctx, par, cache):
    """(idle, under load, worker) RSS in MiB of the thin server on bench-tiny-01."""
    thin = start_thin(ctx, "thin-mem", installed(par, cache, "bench-tiny-01"))
    thin.wait_ok("POST", "/agents/x/invoke", b"{}", timeout=60)
    time.sleep(1)
    idle = rss_kb(thin.pid)
    worker = sum(rss_kb(p) for p in children(thin.pid))
    with PeakRss([thin.pid]) as peak:
        wrk(thin.base + "/agents/x/invoke", 32, 2, "POST", '{"a":1}', warmup=0)
    thin.stop()
    ctx.started.remove(thin)
    return mib(idle), mib(peak.peak), mib(worker)
