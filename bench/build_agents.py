#!/usr/bin/env python3
"""Build the benchmark packages with the real, pinned Pixell kit.

The projects live in bench/agents/<dir>/ (same layout as fixtures/agents/). Each is built
in one or more variants: a copy whose agent.yaml `name:` is replaced, optionally with
src/blob.bin of random (incompressible) bytes written first, so the package size is what
we ask for. The kit and uv are found exactly as scripts/build-fixtures.py finds them
(this module reuses its functions). Output: <out>/<name>.apkg; a stamp of the inputs
makes a second run with unchanged inputs do nothing.

Usage: python3 bench/build_agents.py [--out DIR] [--copies N] [--jobs N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import importlib.util
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MIB = 1024 * 1024
# (project dir, variant name, bytes of src/blob.bin)
SIZES = [("bench-size", "bench-size-1mb", 1 * MIB), ("bench-size", "bench-size-30mb", 30 * MIB)]


def load_fixture_builder():
    path = REPO / "scripts" / "build-fixtures.py"
    spec = importlib.util.spec_from_file_location("build_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def variants(copies: int) -> list[tuple[str, str, int]]:
    tiny = [("bench-tiny", f"bench-tiny-{i:02d}", 0) for i in range(1, copies + 1)]
    return SIZES + tiny


def inputs_digest(items: list[tuple[str, str, int]], builder_stamp: dict) -> str:
    h = hashlib.sha256(json.dumps([items, builder_stamp, 1]).encode())
    for path in sorted((BENCH / "agents").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(BENCH)).encode())
            h.update(path.read_bytes())
    h.update((BENCH / "build_agents.py").read_bytes())
    return h.hexdigest()


def build_one(bf, venv: Path, project: str, name: str, blob: int, out: Path) -> str:
    with tempfile.TemporaryDirectory(prefix=f"par-bench-{name}-") as tmp:
        src = Path(tmp) / name
        shutil.copytree(BENCH / "agents" / project, src,
                        ignore=shutil.ignore_patterns("fixture.json", "__pycache__", "*.pyc"))
        manifest = src / "agent.yaml"
        text = manifest.read_text()
        old = f"\nname: {project}\n"
        if text.count(old) != 1:
            raise bf.Fail(f"bench/agents/{project}/agent.yaml must have one line 'name: {project}'")
        manifest.write_text(text.replace(old, f"\nname: {name}\n"))
        if blob:
            (src / "src" / "blob.bin").write_bytes(random.Random(name).randbytes(blob))
        env = bf.uv_env()
        env.update(PYTHONUTF8="1", PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
        cmd = [str(venv / "bin" / "pixell"), "build", "-p", str(src), "-o", f"{tmp}/out"]
        r = subprocess.run(cmd, cwd=src, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, errors="replace",
                           timeout=bf.BUILD_TIMEOUT)
        built = sorted(Path(tmp, "out").glob("*.apkg"))
        if r.returncode != 0 or len(built) != 1:
            raise bf.Fail(f"{name}: `pixell build` failed (exit {r.returncode}):\n{r.stdout}")
        shutil.copy2(built[0], out / f"{name}.apkg")
    return name


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "target" / "bench" / "agents")
    ap.add_argument("--copies", type=int, default=50, help="copies of bench-tiny (default 50)")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args()
    bf = load_fixture_builder()
    tools = REPO / ".par-tools"
    key = "pixell-kit-0.4.12"
    items = variants(args.copies)
    digest = inputs_digest(items, bf.builder_stamp(key))
    stamp = args.out / ".inputs"
    if stamp.is_file() and stamp.read_text() == digest:
        bf.log(f"bench packages up to date in {args.out}")
        return 0
    venv = bf.ensure_builder(bf.find_uv(tools), tools, key)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    bf.log(f"building {len(items)} bench packages with {key} into {args.out}")
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        jobs = [pool.submit(build_one, bf, venv, p, n, b, args.out) for p, n, b in items]
        for job in concurrent.futures.as_completed(jobs):
            job.result()
    stamp.write_text(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
