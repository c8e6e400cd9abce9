#!/usr/bin/env python3
"""Build the benchmark packages with the real, pinned Pixell kit.

The projects live in bench/agents/<dir>/ (same layout as fixtures/agents/). Each is built
in one or more variants: a copy whose agent.yaml `name:` is replaced, optionally with
src/blob.bin of random (incompressible) bytes written first, so the package size is what
we ask for. The kit and uv are found exactly as scripts/build-fixtures.py finds them
(this module reuses its functions). Output: <out>/<name>.apkg; a stamp of the inputs
makes a second run with unchanged inputs build only what is missing.

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
import zipfile
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


def inputs_digest(builder_stamp: dict) -> str:
    h = hashlib.sha256(json.dumps([builder_stamp, 2]).encode())
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


def build_packages(out: Path, items: list[tuple[str, str, int]], jobs: int) -> None:
    """Builds every (project, name, blob bytes) into out/<name>.apkg. With the inputs
    (projects, this script, the kit) unchanged since the last call, only missing packages
    are built, so asking for more copies later builds just the new ones."""
    bf = load_fixture_builder()
    tools = REPO / ".par-tools"
    key = "pixell-kit-0.4.12"
    digest = inputs_digest(bf.builder_stamp(key))
    stamp = out / ".inputs"
    if not (stamp.is_file() and stamp.read_text() == digest):
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    missing = [item for item in items if not (out / f"{item[1]}.apkg").is_file()]
    if not missing:
        bf.log(f"bench packages up to date in {out}")
        return
    venv = bf.ensure_builder(bf.find_uv(tools), tools, key)
    bf.log(f"building {len(missing)} bench packages with {key} into {out}")
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        work = [pool.submit(build_one, bf, venv, p, n, b, out) for p, n, b in missing]
        for job in concurrent.futures.as_completed(work):
            job.result()
    stamp.write_text(digest)


# Where pixell-kit 0.4.12 writes the package's name, as (entry, text before, text after).
NAME_SITES = [("agent.yaml", "\nname: ", "\n"), ("setup.py", 'name="', '"'),
              (".pixell/package.json", '"name": "', '"')]


def clone_renamed(template: Path, old: str, new: str, dest: Path) -> None:
    """A copy of the kit-built `template` whose name `old` is `new` wherever the kit wrote
    it (agent.yaml, setup.py, .pixell/package.json) — byte for byte what `pixell build`
    makes of a project with that name, except timestamps, in milliseconds instead of a
    second or more per package (the kit writes no checksums to keep consistent)."""
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(dest.with_suffix(".tmp"), "w") as out:
        for info in src.infolist():
            data = src.read(info)
            for entry, before, after in NAME_SITES:
                if info.filename == entry:
                    needle = f"{before}{old}{after}".encode()
                    if data.count(needle) != 1:
                        raise SystemExit(f"{template}: {entry} does not name {old} once")
                    data = data.replace(needle, f"{before}{new}{after}".encode())
            out.writestr(info, data)
    dest.with_suffix(".tmp").rename(dest)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "target" / "bench" / "agents")
    ap.add_argument("--copies", type=int, default=50, help="copies of bench-tiny (default 50)")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args()
    build_packages(args.out, variants(args.copies), args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
