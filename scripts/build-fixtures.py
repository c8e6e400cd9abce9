#!/usr/bin/env python3
"""Build PAR's test fixtures and example agents with the REAL, pinned Pixell builders.

* Creates one virtual environment per pinned builder under $PAR_TOOLS/kits/ with uv
  (uv itself comes from scripts/ensure-uv.sh); an environment that exists and works is kept.
* Builds every project in fixtures/agents/<dir>/ and examples/<dir>/ with the builder named in
  its fixture.json, from a temporary copy, with `pixell build -p <copy> -o <dir>`.
  A fixture is written twice: `<name>-<metadata.version>.apkg` as the kit names it, and
  `<dir>.apkg` so tests can refer to a fixture by its directory name. An example is written
  once, as `<dir>.apkg`: its output directory is served as it is, and a second copy of the
  same package would only be refused as a duplicate.
* Writes hostile and invalid archives (zip-slip, absolute path, backslash, symlink, bomb,
  overlapping entries, duplicate names, not a zip, bad manifest), based on the real
  kit-minimal package so they are valid apart from the one defect.
* Writes index.json (sha256, size, purpose of every file) into each output directory.

Standard library only. Usage: python3 scripts/build-fixtures.py [--out DIR] [--examples-out DIR]
[--examples-only] [--if-stale] [--jobs N]. `--examples-only` builds just the examples (what
scripts/serve-examples.sh serves), not the ~60 test fixtures. Environment: PAR_TOOLS (default <repo>/.par-tools), PAR_UV (a uv binary
to use instead of running ensure-uv.sh), PAR_BUILDER_PYTHON (interpreter for the builder venvs,
default: this one if it is >= 3.11).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import fcntl
import hashlib
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Pinned builders. fixture.json "builder" names one of these keys.
# Their dependencies are pinned too, in scripts/builder-constraints.txt.
# --------------------------------------------------------------------------------------------
BUILDERS = {
    "pixell-kit-0.4.12": ("pixell-kit", "0.4.12"),
    "pixell-kit-0.3.5": ("pixell-kit", "0.3.5"),
    "pixell-sdk-0.5.4": ("pixell-sdk", "0.5.4"),
}

HOSTILE_BASE = "kit-minimal"  # fixture whose package the hostile archives are made from
BOMB_SIZE = 300 * 1024 * 1024  # hostile-bomb: one entry inflating to this many zero bytes
OVERLAP_ENTRIES = 256  # hostile-overlap: central entries sharing one local record ...
OVERLAP_SIZE = 4 * 1024 * 1024  # ... of this many zero bytes (256 x 4 MiB = 1 GiB inflated)
BUILD_TIMEOUT = 300  # seconds per `pixell build`

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
CONSTRAINTS = SCRIPTS / "builder-constraints.txt"
FIXTURE_SRC = REPO / "fixtures" / "agents"
EXAMPLE_SRC = REPO / "examples"


class Fail(Exception):
    """A build step failed; the message says which and why."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# uv and the builder environments
# --------------------------------------------------------------------------------------------
def find_uv(tools: Path) -> str:
    if os.environ.get("PAR_UV"):
        return os.environ["PAR_UV"]
    env = dict(os.environ, PAR_TOOLS=str(tools))
    r = subprocess.run(["bash", str(SCRIPTS / "ensure-uv.sh")], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise Fail(f"scripts/ensure-uv.sh failed:\n{r.stderr.strip()}")
    return r.stdout.strip().splitlines()[-1]


def builder_python() -> str:
    if os.environ.get("PAR_BUILDER_PYTHON"):
        return os.environ["PAR_BUILDER_PYTHON"]
    if sys.version_info >= (3, 11):
        return sys.executable
    return ">=3.11"  # the kits require Python >= 3.11; let uv look for one


def uv_env() -> dict:
    env = dict(os.environ)
    env["UV_PYTHON_DOWNLOADS"] = "never"  # only PyPI is reachable
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def builder_stamp(key: str) -> dict:
    dist, version = BUILDERS[key]
    return {
        "requirement": f"{dist}=={version}",
        "constraints_sha256": hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest(),
    }


def builder_ok(venv: Path, key: str) -> bool:
    stamp = venv / ".par-builder.json"
    try:
        if json.loads(stamp.read_text()) != builder_stamp(key):
            return False
        r = subprocess.run([str(venv / "bin" / "pixell"), "--version"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120, env=uv_env())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and r.stdout.strip().endswith(f"version {BUILDERS[key][1]}")


def ensure_builder(uv: str, tools: Path, key: str) -> Path:
    venv = tools / "kits" / key
    if builder_ok(venv, key):
        return venv
    dist, version = BUILDERS[key]
    log(f"creating builder environment {rel(venv)} ({dist}=={version})")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [uv, "venv", "--quiet", "--python", builder_python(), str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         "--constraint", str(CONSTRAINTS), f"{dist}=={version}"],
    ]
    for cmd in steps:
        r = subprocess.run(cmd, cwd=tools, env=uv_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise Fail(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stdout.strip()}")
    (venv / ".par-builder.json").write_text(json.dumps(builder_stamp(key), indent=2) + "\n")
    if not builder_ok(venv, key):
        raise Fail(f"{rel(venv)}: `pixell --version` does not report {version} after install")
    return venv


# --------------------------------------------------------------------------------------------
# Projects
# --------------------------------------------------------------------------------------------
class Project:
    def __init__(self, path: Path, group: str):
        self.path = path
        self.dir_name = path.name
        self.group = group  # "fixture" or "example"
        try:
            self.spec = json.loads((path / "fixture.json").read_text())
        except (OSError, ValueError) as e:
            raise Fail(f"{rel(path)}/fixture.json: {e}")
        self.builder = self.spec.get("builder")
        if self.builder not in BUILDERS:
            raise Fail(f"{rel(path)}/fixture.json: builder {self.builder!r} is not one of "
                       f"{', '.join(BUILDERS)}")
        self.post = self.spec.get("post")
        if self.post is not None and self.post not in POST_STEPS:
            raise Fail(f"{rel(path)}/fixture.json: unknown post step {self.post!r}")


def discover(root: Path, group: str) -> list[Project]:
    if not root.is_dir():
        return []
    return [Project(p, group) for p in sorted(root.iterdir())
            if p.is_dir() and (p / "fixture.json").is_file()]


def read_manifest(apkg: Path) -> dict:
    with zipfile.ZipFile(apkg) as z:
        return json.loads(z.read(".pixell/package.json"))["manifest"]


def build_project(proj: Project, venv: Path, staging: Path) -> dict:
    """Build one project; returns a description of the two files written to staging."""
    with tempfile.TemporaryDirectory(prefix=f"par-build-{proj.dir_name}-") as tmp:
        src = Path(tmp) / proj.dir_name
        out = Path(tmp) / "out"
        env = uv_env()
        env.update(PYTHONUTF8="1", PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
        if "init" in proj.spec:
            scaffold(proj, venv, src, env)
        else:
            shutil.copytree(proj.path, src,
                            ignore=shutil.ignore_patterns("fixture.json", "__pycache__", "*.pyc"))
        cmd = [str(venv / "bin" / "pixell"), "build", "-p", str(src), "-o", str(out)]
        try:
            r = subprocess.run(cmd, cwd=src, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace",
                               timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Fail(f"{rel(proj.path)}: `pixell build` timed out after {BUILD_TIMEOUT}s")
        built = sorted(out.glob("*.apkg")) if out.is_dir() else []
        if r.returncode != 0 or len(built) != 1:
            raise Fail(f"{rel(proj.path)}: `pixell build` ({proj.builder}) failed, exit "
                       f"{r.returncode}, produced {[p.name for p in built]}:\n{r.stdout.strip()}")
        apkg = built[0]
        manifest = read_manifest(apkg)
        expected = f"{manifest['name']}-{manifest['metadata']['version']}.apkg"
        if apkg.name != expected:
            raise Fail(f"{rel(proj.path)}: kit wrote {apkg.name}, expected {expected}")
        if proj.post:
            POST_STEPS[proj.post](apkg, proj)
        check_expectations(apkg, proj)
        kit_name = apkg.name
        dir_alias = f"{proj.dir_name}.apkg"
        if proj.group == "fixture":
            shutil.copy2(apkg, staging / kit_name)
        shutil.copy2(apkg, staging / dir_alias)
    return {"dir": proj.dir_name, "kit_file": kit_name, "alias": dir_alias,
            "name": manifest["name"], "version": manifest["metadata"]["version"]}


def scaffold(proj: Project, venv: Path, dest: Path, env: dict) -> None:
    """fixture.json "init": {"surfaces": [...]}: the project is what `pixell init` generates,
    untouched but for `.env` (the kit refuses to build without one; init writes only
    `.env.example`, which is copied)."""
    surfaces = proj.spec["init"].get("surfaces", [])
    cmd = [str(venv / "bin" / "pixell"), "init", proj.dir_name]
    for surface in surfaces:
        cmd += ["--surface", surface]
    r = subprocess.run(cmd, cwd=dest.parent, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors="replace", timeout=BUILD_TIMEOUT)
    if r.returncode != 0 or not (dest / "agent.yaml").is_file():
        raise Fail(f"{rel(proj.path)}: `pixell init` failed, exit {r.returncode}:\n{r.stdout.strip()}")
    example = dest / ".env.example"
    shutil.copy2(example, dest / ".env") if example.is_file() else (dest / ".env").write_text("")


def check_expectations(apkg: Path, proj: Project) -> None:
    exp = proj.spec.get("expect") or {}
    with zipfile.ZipFile(apkg) as z:
        bad = z.testzip()
        if bad is not None:
            raise Fail(f"{rel(proj.path)}: built package has a corrupt entry {bad}")
        names = set(z.namelist())
        problems = []
        for n in exp.get("present", []):
            if n not in names:
                problems.append(f"missing {n}")
        for n in exp.get("absent", []):
            if n in names:
                problems.append(f"unexpected {n}")
        for n, text in (exp.get("contains") or {}).items():
            if n not in names or text not in z.read(n).decode("utf-8", "replace"):
                problems.append(f"{n} does not contain {text!r}")
        for n, text in (exp.get("not_contains") or {}).items():
            if n in names and text in z.read(n).decode("utf-8", "replace"):
                problems.append(f"{n} contains {text!r}")
    if problems:
        raise Fail(f"{rel(proj.path)}: built package is not as expected ({proj.builder}): "
                   + "; ".join(problems) + f"\n  entries: {sorted(names)}")


# --------------------------------------------------------------------------------------------
# Zip rewriting helpers
# --------------------------------------------------------------------------------------------
def copy_entries(zin: zipfile.ZipFile, zout: zipfile.ZipFile, replace: dict | None = None) -> None:
    """Copy every entry (order, times, modes, compression) replacing the data of some."""
    replace = replace or {}
    for info in zin.infolist():
        data = replace.get(info.filename)
        if data is None:
            data = zin.read(info)
        zout.writestr(copy.copy(info), data)


def rewrite_zip(apkg: Path, replace: dict) -> None:
    tmp = apkg.with_suffix(".tmp")
    with zipfile.ZipFile(apkg) as zin, zipfile.ZipFile(tmp, "w") as zout:
        missing = set(replace) - set(zin.namelist())
        if missing:
            raise Fail(f"{apkg.name}: cannot replace missing entries {sorted(missing)}")
        copy_entries(zin, zout, replace)
    os.replace(tmp, apkg)


# --------------------------------------------------------------------------------------------
# Post-processing steps (fixture.json "post")
# --------------------------------------------------------------------------------------------
def post_entrypoint_to_missing_module(apkg: Path, proj: Project) -> None:
    """The kit validates that the entrypoint module exists, so point it elsewhere afterwards."""
    with zipfile.ZipFile(apkg) as z:
        yaml_text = z.read("agent.yaml").decode()
        meta = json.loads(z.read(".pixell/package.json"))
    old, new = "entrypoint: src.main:handler", "entrypoint: src.nothere:handler"
    if yaml_text.count(old) != 1:
        raise Fail(f"{rel(proj.path)}: agent.yaml must contain exactly one '{old}' line")
    meta["manifest"]["entrypoint"] = "src.nothere:handler"
    rewrite_zip(apkg, {"agent.yaml": yaml_text.replace(old, new).encode(),
                       ".pixell/package.json": json.dumps(meta, indent=2).encode()})


def post_verify_setup_py_invalid(apkg: Path, proj: Project) -> None:
    """Fail unless the kit's generated setup.py really is invalid Python."""
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(apkg) as z:
            (Path(tmp) / "setup.py").write_bytes(z.read("setup.py"))
        r = subprocess.run([sys.executable, "-m", "py_compile", "setup.py"], cwd=tmp,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode == 0 or "SyntaxError" not in r.stdout:
        raise Fail(f"{rel(proj.path)}: the generated setup.py compiles (or fails for another "
                   f"reason); the fixture no longer produces an invalid setup.py:\n{r.stdout}")


POST_STEPS = {
    "entrypoint-to-missing-module": post_entrypoint_to_missing_module,
    "verify-setup-py-invalid": post_verify_setup_py_invalid,
}


# --------------------------------------------------------------------------------------------
# Hostile and invalid archives
# --------------------------------------------------------------------------------------------
FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def _with_extra(base: Path, dest: Path, add) -> None:
    """Copy base's entries to dest, then call add(zout) to append the hostile part."""
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        copy_entries(zin, zout)
        add(zout)


def _file_info(name: str, mode: int = 0o100644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)  # keeps '/', '..' and '\' verbatim
    info.create_system = 3  # unix, so external_attr carries st_mode
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def hostile_named(name: str, payload: bytes):
    def add(zout):
        zout.writestr(_file_info(name), payload)
    return add


def hostile_symlink(zout: zipfile.ZipFile) -> None:
    info = _file_info("src/evil-link", 0o120777)  # S_IFLNK | 0777, content = link target
    info.compress_type = zipfile.ZIP_STORED
    zout.writestr(info, b"/etc/passwd")


def hostile_bomb(zout: zipfile.ZipFile) -> None:
    chunk = bytes(1 << 20)
    with zout.open(_file_info("src/bomb.bin"), "w") as w:  # streamed: ~1 MiB of RAM
        for _ in range(BOMB_SIZE // len(chunk)):
            w.write(chunk)


def hostile_duplicate(zout: zipfile.ZipFile, original: bytes) -> None:
    second = original.decode().replace("version: 1.0.0", "version: 6.6.6", 1)
    second = second.replace("entrypoint: src.main:handler", "entrypoint: src.evil:handler", 1)
    second = "# SECOND agent.yaml with the same name: which one wins?\n" + second
    if second.encode() == original:
        raise Fail("hostile-duplicate: could not derive a different agent.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name"
        zout.writestr(_file_info("agent.yaml"), second.encode())


def _dos_time(dt) -> tuple[int, int]:
    y, mo, d, h, mi, s = dt
    return (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d


def write_overlap(base: Path, dest: Path) -> None:
    """Hand-made zip: base's entries, then ONE local record of OVERLAP_SIZE zero bytes that
    OVERLAP_ENTRIES central-directory entries all point at. The first of those has the local
    record's own name; the rest have other names (so they also disagree with the local header)."""
    out = io.BytesIO()
    central = []  # (name bytes, flags, method, time, date, crc, csize, usize, attr, sys, offset)

    def local(name: str, method: int, dt, crc: int, data: bytes, usize: int) -> int:
        nb = name.encode("utf-8")
        flags = 0 if name.isascii() else 0x800
        t, d = _dos_time(dt)
        off = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, t, d, crc,
                              len(data), usize, len(nb), 0))
        out.write(nb)
        out.write(data)
        return off

    def compress(raw: bytes, method: int) -> bytes:
        if method == zipfile.ZIP_STORED:
            return raw
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(raw) + c.flush()

    with zipfile.ZipFile(base) as zin:
        for info in zin.infolist():
            raw = zin.read(info)
            method = info.compress_type
            data = compress(raw, method)
            crc = zlib.crc32(raw)
            off = local(info.filename, method, info.date_time, crc, data, len(raw))
            central.append((info.filename, method, info.date_time, crc, len(data), len(raw),
                            info.external_attr, info.create_system, off))

    raw = bytes(OVERLAP_SIZE)
    data = compress(raw, zipfile.ZIP_DEFLATED)
    crc = zlib.crc32(raw)
    off = local("src/overlap.bin", zipfile.ZIP_DEFLATED, FIXED_TIME, crc, data, len(raw))
    for i in range(OVERLAP_ENTRIES):
        name = "src/overlap.bin" if i == 0 else f"src/overlap-{i:03d}.bin"
        central.append((name, zipfile.ZIP_DEFLATED, FIXED_TIME, crc, len(data), len(raw),
                        0o100644 << 16, 3, off))

    cd_start = out.tell()
    for name, method, dt, crc, csize, usize, attr, system, off in central:
        nb = name.encode("utf-8")
        flags = 0 if name.isascii() else 0x800
        t, d = _dos_time(dt)
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (system << 8) | 20, 20, flags,
                              method, t, d, crc, csize, usize, len(nb), 0, 0, 0, 0, attr, off))
        out.write(nb)
    cd_size = out.tell() - cd_start
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), cd_size,
                          cd_start, 0))
    dest.write_bytes(out.getvalue())


def write_not_a_zip(dest: Path) -> None:
    rng = random.Random(0x9A4)  # deterministic "random" bytes
    while True:
        data = bytes(rng.getrandbits(8) for _ in range(4096))
        if b"PK" not in data:  # no accidental zip signatures
            break
    dest.write_bytes(data)


def write_bad_manifest(base: Path, dest: Path) -> None:
    with zipfile.ZipFile(base) as zin:
        text = zin.read("agent.yaml").decode()
    lines = text.splitlines(keepends=True)
    # drop the `  version: ...` line directly under `metadata:`
    out, in_meta, dropped = [], False, False
    for line in lines:
        if line.startswith("metadata:"):
            in_meta = True
        elif line[:1] not in (" ", "\t", "#", "\n", ""):
            in_meta = False
        if in_meta and not dropped and line.strip().startswith("version:") \
                and line.startswith("  ") and not line.startswith("   "):
            dropped = True
            continue
        out.append(line)
    if not dropped:
        raise Fail("bad-manifest: kit-minimal's agent.yaml has no metadata.version line")
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        copy_entries(zin, zout, {"agent.yaml": "".join(out).encode()})


def write_hostile(base: Path, staging: Path) -> dict:
    """Returns {file name: purpose}."""
    with zipfile.ZipFile(base) as z:
        original_yaml = z.read("agent.yaml")
    made = {}

    def add_zip(fname, purpose, add):
        _with_extra(base, staging / fname, add)
        made[fname] = purpose

    add_zip("hostile-zip-slip.apkg",
            "valid kit-minimal package plus an entry named '../evil.txt' (path traversal)",
            hostile_named("../evil.txt", b"escaped the extraction directory\n"))
    add_zip("hostile-absolute.apkg",
            "valid kit-minimal package plus an entry with the absolute name '/tmp/par-evil.txt'",
            hostile_named("/tmp/par-evil.txt", b"absolute path entry\n"))
    add_zip("hostile-backslash.apkg",
            "valid kit-minimal package plus an entry named 'src\\..\\evil.py' (backslashes)",
            hostile_named("src\\..\\evil.py", b"raise SystemExit('backslash entry executed')\n"))
    add_zip("hostile-symlink.apkg",
            "valid kit-minimal package plus 'src/evil-link', a symlink entry (mode 0o120777) "
            "whose target is /etc/passwd",
            hostile_symlink)
    add_zip("hostile-bomb.apkg",
            f"valid kit-minimal package plus 'src/bomb.bin', one deflated entry inflating to "
            f"{BOMB_SIZE // (1 << 20)} MiB of zeros",
            hostile_bomb)
    add_zip("hostile-duplicate.apkg",
            "valid kit-minimal package with a second, different 'agent.yaml' entry appended "
            "(version 6.6.6, entrypoint src.evil:handler)",
            lambda zout: hostile_duplicate(zout, original_yaml))
    write_overlap(base, staging / "hostile-overlap.apkg")
    made["hostile-overlap.apkg"] = (
        f"hand-made zip: kit-minimal's entries plus {OVERLAP_ENTRIES} central-directory entries "
        f"(src/overlap.bin, src/overlap-001.bin, ...) sharing ONE local record of "
        f"{OVERLAP_SIZE // (1 << 20)} MiB of zeros "
        f"({OVERLAP_ENTRIES * OVERLAP_SIZE // (1 << 20)} MiB inflated in total)")
    write_not_a_zip(staging / "not-a-zip.apkg")
    made["not-a-zip.apkg"] = "4096 pseudo-random bytes, not a zip at all"
    write_bad_manifest(base, staging / "bad-manifest.apkg")
    made["bad-manifest.apkg"] = ("valid kit-minimal package whose agent.yaml lacks "
                                 "metadata.version (.pixell/package.json left as built)")
    return made


# --------------------------------------------------------------------------------------------
# Output, index, staleness
# --------------------------------------------------------------------------------------------
def inputs_digest(projects: list[Project]) -> str:
    h = hashlib.sha256()
    for f in (Path(__file__).resolve(), CONSTRAINTS, SCRIPTS / "ensure-uv.sh"):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    for proj in projects:
        for f in sorted(p for p in proj.path.rglob("*") if p.is_file()):
            if "__pycache__" in f.parts:
                continue
            h.update(f"{proj.group}/{f.relative_to(proj.path.parent)}".encode() + b"\0")
            h.update(b"x" if os.access(f, os.X_OK) else b"-")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def is_fresh(out_dir: Path, digest: str) -> bool:
    try:
        index = json.loads((out_dir / "index.json").read_text())
    except (OSError, ValueError):
        return False
    if index.get("inputs_sha256") != digest:
        return False
    for name, entry in index.get("files", {}).items():
        p = out_dir / name
        if not p.is_file() or p.stat().st_size != entry.get("size"):
            return False
    return True


def publish(staging: Path, out_dir: Path, files: dict, digest: str, title: str) -> None:
    """Move staged files into out_dir (each atomically), write index.json, drop stale files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    old = {}
    try:
        old = json.loads((out_dir / "index.json").read_text()).get("files", {})
    except (OSError, ValueError):
        pass
    index_files = {}
    for name in sorted(files):
        src = staging / name
        entry = dict(files[name])
        entry["size"] = src.stat().st_size
        entry["sha256"] = sha256_file(src)
        index_files[name] = entry
        os.replace(src, out_dir / name)
        what = entry["kind"] + (" (kit file name)" if entry.get("named_by") == "kit" else "")
        print(f"{rel(out_dir / name)}  {human(entry['size'])}  {what}", flush=True)
    for name in old:
        if name not in index_files and "/" not in name and (out_dir / name).is_file():
            (out_dir / name).unlink()
    index = {
        "title": title,
        "generated_by": "scripts/build-fixtures.py",
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs_sha256": digest,
        "builders": {k: f"{d}=={v}" for k, (d, v) in BUILDERS.items()},
        "files": index_files,
    }
    tmp = out_dir / "index.json.tmp"
    tmp.write_text(json.dumps(index, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, out_dir / "index.json")
    print(f"{rel(out_dir / 'index.json')}  {len(index_files)} files", flush=True)


def package_entries(results: list[dict], projects: dict, src_root: Path) -> dict:
    files = {}
    for res in results:
        proj = projects[res["dir"]]
        dist, version = BUILDERS[proj.builder]
        common = {
            "source": rel(src_root / res["dir"]),
            "builder": f"{dist}=={version}",
            "name": res["name"],
            "version": res["version"],
            "post": proj.post,
            "purpose": proj.spec.get("purpose", ""),
        }
        if proj.group == "example":  # one file each: the directory is served as it is
            files[res["alias"]] = dict(common, kind="example", named_by="directory",
                                       kit_file=res["kit_file"])
            continue
        files[res["alias"]] = dict(common, kind="agent", named_by="directory",
                                   same_as=res["kit_file"])
        files[res["kit_file"]] = dict(common, kind="agent", named_by="kit",
                                      same_as=res["alias"])
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "target" / "fixtures",
                    help="output directory for fixtures (default: target/fixtures)")
    ap.add_argument("--examples-out", type=Path, default=REPO / "target" / "examples",
                    help="output directory for examples (default: target/examples)")
    ap.add_argument("--examples-only", action="store_true",
                    help="build only the examples (what scripts/serve-examples.sh serves)")
    ap.add_argument("--if-stale", action="store_true",
                    help="do nothing when both output directories were built from the same inputs")
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2),
                    help="parallel builds (default: number of CPUs, at least 2)")
    args = ap.parse_args()
    out_dir, ex_dir = args.out.resolve(), args.examples_out.resolve()
    tools = Path(os.environ.get("PAR_TOOLS") or REPO / ".par-tools").resolve()
    t0 = time.monotonic()

    try:
        fixtures = [] if args.examples_only else discover(FIXTURE_SRC, "fixture")
        examples = discover(EXAMPLE_SRC, "example")
        if not args.examples_only and HOSTILE_BASE not in {p.dir_name for p in fixtures}:
            raise Fail(f"fixtures/agents/{HOSTILE_BASE} is needed as the base of the hostile "
                       "archives")
        names = [p.dir_name for p in fixtures] + [p.dir_name for p in examples]
        fixture_digest = inputs_digest(fixtures)
        example_digest = inputs_digest(examples)

        tools.mkdir(parents=True, exist_ok=True)
        with open(tools / ".build-fixtures.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time per $PAR_TOOLS
            fixtures_fresh = args.examples_only or is_fresh(out_dir, fixture_digest)
            if args.if_stale and fixtures_fresh and is_fresh(ex_dir, example_digest):
                built = rel(ex_dir) if args.examples_only else f"{rel(out_dir)} and {rel(ex_dir)}"
                print(f"{built}: up to date")
                return 0

            uv = find_uv(tools)
            needed = sorted({p.builder for p in fixtures + examples})
            with concurrent.futures.ThreadPoolExecutor(len(needed)) as pool:
                venvs = dict(zip(needed, pool.map(lambda k: ensure_builder(uv, tools, k),
                                                  needed)))

            if not args.examples_only:
                out_dir.mkdir(parents=True, exist_ok=True)
            ex_dir.mkdir(parents=True, exist_ok=True)
            fx_parent = ex_dir if args.examples_only else out_dir
            with tempfile.TemporaryDirectory(prefix=".staging-", dir=fx_parent) as fx_stage, \
                    tempfile.TemporaryDirectory(prefix=".staging-", dir=ex_dir) as ex_stage:
                fx_stage, ex_stage = Path(fx_stage), Path(ex_stage)
                jobs = [(p, fx_stage) for p in fixtures] + [(p, ex_stage) for p in examples]
                results, errors = {}, []
                with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
                    futs = {pool.submit(build_project, p, venvs[p.builder], st): p
                            for p, st in jobs}
                    for fut in concurrent.futures.as_completed(futs):
                        p = futs[fut]
                        try:
                            results[(p.group, p.dir_name)] = fut.result()
                        except Fail as e:
                            errors.append(str(e))
                if errors:
                    raise Fail("\n\n".join(errors))

                fx_results = [results[("fixture", p.dir_name)] for p in fixtures]
                ex_results = [results[("example", p.dir_name)] for p in examples]
                for group in (fx_results, ex_results):
                    seen = {}
                    for res in group:
                        for f in (res["kit_file"], res["alias"]):
                            if f in seen and seen[f] != res["dir"]:
                                raise Fail(f"{f} is produced by both {seen[f]} and {res['dir']}")
                            seen[f] = res["dir"]

                ex_files = package_entries(ex_results, {p.dir_name: p for p in examples},
                                           EXAMPLE_SRC)
                if args.examples_only:
                    publish(ex_stage, ex_dir, ex_files, example_digest, "PAR example agents")
                    log(f"build-fixtures: {len(names)} examples built in "
                        f"{time.monotonic() - t0:.1f}s")
                    return 0
                fx_files = package_entries(fx_results, {p.dir_name: p for p in fixtures},
                                           FIXTURE_SRC)
                hostile = write_hostile(fx_stage / f"{HOSTILE_BASE}.apkg", fx_stage)
                for fname, purpose in hostile.items():
                    if fname in fx_files:
                        raise Fail(f"{fname} clashes with a built fixture")
                    kind = "invalid" if fname in ("not-a-zip.apkg", "bad-manifest.apkg") \
                        else "hostile"
                    fx_files[fname] = {"kind": kind, "base": f"{HOSTILE_BASE}.apkg",
                                       "purpose": purpose}
                fx_files["not-a-zip.apkg"].pop("base")
                publish(fx_stage, out_dir, fx_files, fixture_digest,
                        "PAR test fixtures (see fixtures/agents/*/fixture.json)")
                publish(ex_stage, ex_dir, ex_files, example_digest, "PAR example agents")
    except Fail as e:
        print(f"build-fixtures: FAILED\n{e}", file=sys.stderr)
        return 1
    log(f"build-fixtures: {len(names)} projects built in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
