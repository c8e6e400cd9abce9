"""Echo against the floors, alternating in one run: PAR (`par serve`, defaults: strict
sandbox, one worker per package), one bare Python process (bench/bare.py) and FastAPI +
uvicorn (bench/fastapi_echo.py: uvloop, httptools, 1 worker), each serving the same
handler: kit-minimal (sync, `{"text":"hello"}`) and kit-async (async, `{"sleep":0}`).
`wrk -t2 -c32` (or --connections), --seconds measured after 1 s of warm-up, --repeat
rounds; the table gives medians and the ratios PAR/bare and PAR/FastAPI.

Usage: python3 bench/floor.py --par target/release/par --fastapi-python VENV/bin/python
       [--seconds 3] [--repeat 2] [--connections 32]
Needs the fixtures built (scripts/build-fixtures.py), uv (PAR_UV) and wrk.
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
AGENTS = {"sync": ("kit-minimal", {"text": "hello"}), "async": ("kit-async", {"sleep": 0})}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_answer(url, body, limit=300):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"no answer from {url}")


def package_python(cache, report):
    """The Python of the environment PAR built for this package (bench/harness/setup.py)."""
    env = report["environment"]
    for name in (env, f"v1-{env}"):
        python = os.path.join(cache, "envs", name, "bin", "python")
        if os.path.exists(python):
            return python
    raise SystemExit(f"no environment {env} for {report['name']} in {cache}/envs")


def cpu_seconds(pid):
    """(CPU seconds of pid, of its live descendants): utime + stime from /proc."""
    def own(p):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    descendants, pending = [], [pid]
    while pending:
        for task in Path(f"/proc/{pending.pop()}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                kids = []
            descendants += kids
            pending += kids
    return own(pid), sum(own(p) for p in descendants)


def wrk(url, body, connections, seconds, pid):
    """(calls/s, CPU µs per call of the server process, of its descendants)."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                 'wrk.headers["Content-Type"] = "application/json"\n')
    script.close()
    base = ["wrk", "-t2", f"-c{connections}", "-s", script.name, url]
    subprocess.run(base[:3] + ["-d1s"] + base[3:], capture_output=True, check=True)
    before = cpu_seconds(pid)
    out = subprocess.run(base[:3] + [f"-d{seconds}s"] + base[3:], capture_output=True,
                         text=True, check=True).stdout
    after = cpu_seconds(pid)
    os.unlink(script.name)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed calls\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    calls = rate * seconds
    return rate, *((a - b) * 1e6 / calls for a, b in zip(after, before))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--par", default="target/release/par")
    ap.add_argument("--fastapi-python", required=True)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    uv = os.environ.get("PAR_UV") or "uv"
    load_start = os.getloadavg()
    procs = []
    with tempfile.TemporaryDirectory() as cache:
        port = free_port()
        par = f"http://127.0.0.1:{port}"
        procs.append(subprocess.Popen(
            [args.par, "serve", "--listen", f"127.0.0.1:{port}", "--cache-dir", cache,
             "--usage-db", "off", "--log-format", "json", "--uv", uv,
             "target/fixtures/kit-minimal.apkg", "target/fixtures/kit-async.apkg"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            servers = {"par": {}, "bare": {}, "fastapi": {}}
            pids = {"par": procs[0].pid}
            for kind, (agent, body) in AGENTS.items():
                data = json.dumps(body).encode()
                servers["par"][kind] = f"{par}/agents/{agent}/invoke"
                wait_answer(servers["par"][kind], data)
                with urllib.request.urlopen(f"{par}/runtime/packages") as r:
                    report = next(p for p in json.load(r)["packages"] if p["name"] == agent)
                root = os.path.join(cache, "packages", report["sha256"])
                venv_python = package_python(cache, report)
                entry = "src.main:handler"
                for name, python, script in (("bare", venv_python, "bare.py"),
                                             ("fastapi", args.fastapi_python, "fastapi_echo.py")):
                    p = free_port()
                    procs.append(subprocess.Popen(
                        [python, os.path.join(HERE, script), root, entry, str(p)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                    servers[name][kind] = f"http://127.0.0.1:{p}/invoke"
                    pids[(name, kind)] = procs[-1].pid
                    wait_answer(servers[name][kind], data)
            results, cpu = {}, {}
            for kind, (_, body) in AGENTS.items():
                for _ in range(args.repeat):
                    for name in ("par", "bare", "fastapi"):
                        pid = pids["par"] if name == "par" else pids[(name, kind)]
                        rate, own, kids = wrk(servers[name][kind], json.dumps(body),
                                              args.connections, args.seconds, pid)
                        results.setdefault((kind, name), []).append(rate)
                        cpu.setdefault((kind, name), []).append((own, kids))
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)
    print(f"| handler | PAR calls/s | bare calls/s | FastAPI calls/s | PAR/bare | PAR/FastAPI |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in AGENTS:
        par, bare, fast = (statistics.median(results[(kind, n)]) for n in ("par", "bare", "fastapi"))
        print(f"| {kind} c={args.connections} | {par:,.0f} | {bare:,.0f} | {fast:,.0f} | "
              f"{par / bare:.2f} | {par / fast:.2f} |")
    print("\nCPU per call, µs (medians; the process serving HTTP, and its descendants: PAR's"
          " workers and jail processes, FastAPI's none):\n")
    print("| handler | PAR runtime | PAR worker side | PAR total | bare | FastAPI |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in AGENTS:
        own, kids = (statistics.median(x[i] for x in cpu[(kind, "par")]) for i in (0, 1))
        bare, fast = (statistics.median(sum(x) for x in cpu[(kind, n)])
                      for n in ("bare", "fastapi"))
        print(f"| {kind} | {own:.0f} | {kids:.0f} | {own + kids:.0f} | {bare:.0f} | {fast:.0f} |")
    print(json.dumps({"load_avg_start": load_start, "load_avg_end": os.getloadavg(),
                      "calls_per_s": {f"{k}/{n}": v for (k, n), v in results.items()}}))


if __name__ == "__main__":
    sys.exit(main())
