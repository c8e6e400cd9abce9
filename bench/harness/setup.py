"""What every scenario needs: paths, and starting PAR and the thin baseline."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .procs import Server, free_port


@dataclass
class Ctx:
    repo: Path
    par: Path
    thin: Path
    uv: str
    tmp: Path
    seconds: float = 3.0
    repeat: int = 2
    started: list[Server] = field(default_factory=list)

    @property
    def fixtures(self) -> Path:
        return self.repo / "target" / "fixtures"

    @property
    def agents(self) -> Path:
        return self.repo / "target" / "bench" / "agents"

    def new_dir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp))

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()
        self.started.clear()


def start_par(ctx: Ctx, name: str, sources: list[Path], cache: Path, extra=(), env=None) -> Server:
    """`par serve` on a free loopback port; not waited for."""
    port = free_port()
    # BENCH_PAR_ARGS: more `par serve` flags for every server (e.g. `--sandbox off`, to
    # compare with a build that has no sandbox).
    more = os.environ.get("BENCH_PAR_ARGS", "").split()
    argv = [str(ctx.par), "serve", "--listen", f"127.0.0.1:{port}", "--cache-dir", str(cache),
            "--usage-db", "off", "--log-format", "json", "--uv", ctx.uv, *more, *extra,
            *map(str, sources)]
    server = Server(name, argv, ctx.tmp / f"{name}.log", port, env=env)
    ctx.started.append(server)
    return server


def par_env(**extra) -> dict:
    """The environment PAR runs with: the caller's (PATH as run.sh found it), no PAR_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAR_")}
    env["PATH"] = os.environ.get("BENCH_HOST_PATH", env.get("PATH", ""))
    env.update(extra)
    return env


@dataclass
class Installed:
    """Where PAR put one package: what the thin baseline and uvicorn run from."""

    report: dict
    root: Path
    python: Path


def installed(par: Server, cache: Path, name: str) -> Installed:
    reports = par.json("/runtime/packages")["packages"]
    report = next((r for r in reports if r.get("name") == name), None)
    if report is None or report.get("state") != "ready":
        raise RuntimeError(f"package {name} is not ready in PAR; reports: {reports}")
    root = cache / "packages" / report["sha256"]
    env = report["environment"]
    candidates = [cache / "envs" / env, cache / "envs" / f"v1-{env}"]
    envdir = next((c for c in candidates if (c / "bin" / "python").exists()), None)
    if envdir is None:
        raise RuntimeError(f"no environment for {name} among {candidates}")
    return Installed(report, root, envdir / "bin" / "python")


def start_thin(ctx: Ctx, name: str, pkg: Installed, ui: Path | None = None) -> Server:
    port = free_port()
    argv = [str(ctx.thin), "--listen", f"127.0.0.1:{port}", "--python", str(pkg.python),
            "--root", str(pkg.root), "--scratch", str(ctx.new_dir("thin-"))]
    if ui is not None:
        argv += ["--ui", str(ui)]
    server = Server(name, argv, ctx.tmp / f"{name}.log", port)
    ctx.started.append(server)
    return server
