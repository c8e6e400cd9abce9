#!/usr/bin/env python3
"""Run PAR's benchmark scenarios beside their baselines and print one table.

Run through bench/run.sh, which builds the binaries and the bench packages first.
Usage: python3 bench/bench.py --par BIN --thin BIN --uv BIN [--seconds S] [--only NAME,...]
Scenarios, in order: echo, rest, sse, ui, slow, tuned (what-if: echo with PAR_LOG=warn, i.e.
without the per-call log line), start, memory.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import serving, startup  # noqa: E402
from harness.report import save, text_table  # noqa: E402
from harness.setup import Ctx  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ORDER = ["echo", "rest", "sse", "ui", "slow", "tuned", "start", "memory"]
SERVING = {"echo": None, "rest": "rest", "sse": "streaming", "ui": "ui", "slow": "slow_calls",
           "tuned": "tuned"}


def machine_facts() -> dict:
    load = os.getloadavg()
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "load_avg_at_start": [round(x, 2) for x in load],
    }


def run(ctx: Ctx, only: list[str], facts: dict) -> list:
    rows = []
    serving_wanted = [s for s in SERVING if s in only]
    if serving_wanted:
        st = serving.stage(ctx)
        for name in serving_wanted:
            if name == "echo":
                rows += serving.echo(ctx, st, facts)
            else:
                rows += getattr(serving, SERVING[name])(ctx, st)
        ctx.stop_all()
    if "start" in only:
        rows += startup.cold_start(ctx)
    if "memory" in only:
        rows += startup.memory(ctx)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--par", type=Path, required=True)
    ap.add_argument("--thin", type=Path, required=True)
    ap.add_argument("--uv", required=True)
    ap.add_argument("--seconds", type=float, default=3.0, help="measured seconds per load run")
    ap.add_argument("--repeat", type=int, default=2,
                    help="echo runs per (agent, concurrency), PAR and thin alternating; "
                    "the table shows medians")
    ap.add_argument("--only", default=",".join(ORDER), help="comma-separated scenarios")
    ap.add_argument("--out", type=Path, default=REPO / "target" / "bench")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(ORDER)
    if unknown:
        ap.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(ORDER)}")
    # SIGTERM unwinds like an exception, so the servers below are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="par-bench-"))
    uv = os.path.abspath(args.uv) if os.sep in args.uv else args.uv
    ctx = Ctx(REPO, args.par.resolve(), args.thin.resolve(), uv, tmp, args.seconds)
    ctx.repeat = max(1, args.repeat)
    facts = machine_facts()
    start = time.monotonic()
    try:
        rows = run(ctx, only, facts)
    finally:
        ctx.stop_all()
        if args.keep:
            print(f"[bench] kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    facts["seconds"] = round(time.monotonic() - start, 1)
    facts["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(text_table(rows))
    print(f"\nratio = PAR / baseline. {facts}")
    save(rows, facts, args.out)
    print(f"[bench] wrote {args.out / 'results.json'} and results.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
