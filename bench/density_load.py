"""Load for bench/density.py: the rolling working set of client threads, and mounting
packages through the management API a batch at a time."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request
from pathlib import Path


def call(conn: http.client.HTTPConnection, name: str) -> bool:
    conn.request("POST", f"/agents/{name}/invoke", body=b'{"n":1}',
                 headers={"content-type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status == 200


class Rolling:
    """Twenty (--working-set) client threads; thread j calls package (w * set + j) % N
    during window w, each window --rotate seconds."""

    def __init__(self, par: Par, names: list[str], size: int, rotate: float) -> None:
        self.par, self.names, self.size, self.rotate = par, names, size, rotate
        self.lock = threading.Lock()
        self.ok = self.failed = 0
        self.first_call_ms: list[float] = []  # the first call of each window: usually a wake
        self.errors: list[str] = []

    def package(self, window: int, slot: int) -> str:
        return self.names[(window * self.size + slot) % len(self.names)]

    def client(self, slot: int, start: float, end: float) -> None:
        ok = failed = 0
        current = None
        conn = http.client.HTTPConnection("127.0.0.1", self.par.port, timeout=120)
        while (now := time.monotonic()) < end:
            window = int((now - start) // self.rotate)
            name = self.package(window, slot)
            began = time.perf_counter()
            try:
                good = call(conn, name)
            except (OSError, http.client.HTTPException) as e:
                good = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.par.port, timeout=120)
                with self.lock:
                    self.errors.append(f"{name}: {e!r}")
            if name != current:
                current = name
                with self.lock:
                    self.first_call_ms.append((time.perf_counter() - began) * 1000)
            ok, failed = ok + good, failed + (not good)
        conn.close()
        with self.lock:
            self.ok, self.failed = self.ok + ok, self.failed + failed

    def run(self, seconds: float) -> None:
        start = time.monotonic()
        threads = [threading.Thread(target=self.client, args=(j, start, start + seconds))
                   for j in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def mount_via_api(par, packages: list[Path], mounted: int, batch: int, limit: float) -> None:
    """`POST /runtime/packages {"source"}` for each package, `batch` at a time, each batch
    waited for: a package loaded this way is mounted (and its idle clock started) as soon
    as it is ready, so at most about `batch` + what loaded in the last idle timeout are
    awake, where a startup load keeps every package awake until the last is ready."""
    for start in range(0, len(packages), batch):
        for path in packages[start:start + batch]:
            req = urllib.request.Request(
                f"{par.url}/runtime/packages", data=json.dumps({"source": str(path)}).encode(),
                headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                assert r.status == 202, r.status
        done = mounted + min(len(packages), start + batch)
        par.wait_states(done, {"ready", "idle"}, limit)
