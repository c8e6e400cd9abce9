"""Starting and stopping the servers under test, talking to them, reading their memory."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5.0):
    """(status, body bytes); status 0 when the connection failed."""
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, b""


def wait_until(check, timeout: float, what: str, poll: float = 0.005) -> float:
    """Polls `check()` until true; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - start


class Server:
    """A process under test, its output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: list[str], log: Path, port: int, env: dict | None = None):
        self.name, self.port, self.log = name, port, log
        self.base = f"http://127.0.0.1:{port}"
        self.started = time.monotonic()
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log tail:\n{tail}")

    def wait_ok(self, method: str, path: str, body: bytes | None = None, timeout=120.0) -> float:
        """Seconds from process start until `method path` answers 200."""
        def ok():
            self.check_alive()
            return http(method, self.base + path, body, timeout=5)[0] == 200
        wait_until(ok, timeout, f"{self.name} {method} {path}")
        return time.monotonic() - self.started

    def json(self, path: str):
        status, body = http("GET", self.base + path)
        if status != 200:
            raise RuntimeError(f"{self.name} GET {path} answered {status}: {body[:300]!r}")
        return json.loads(body)

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def rss_kb(pid: int) -> int:
    """Resident set size (VmRSS) in KiB; 0 for a process that is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def children(pid: int) -> list[int]:
    """Direct children of `pid` (all threads' child lists)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


class PeakRss:
    """Samples the RSS of some processes every 20 ms in a thread; keeps the peak sum."""

    def __init__(self, pids: list[int]):
        self.pids, self.peak = pids, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(rss_kb(p) for p in self.pids))
            self._stop.wait(0.02)


def mib(kb: int) -> float:
    return kb / 1024.0
