"""The REST baseline: a kit package's REST surface served directly by uvicorn on TCP.

Builds the app the way PAR's surface host does (python/par_asgi.py, mode `rest`: a new
FastAPI app, the package's mount(app) called once, the same uvicorn settings) but listens
on a loopback TCP port instead of a Unix socket behind PAR.

Usage: <package venv python> bench/uvicorn_direct.py PACKAGE_ROOT module:mount PORT
"""

import importlib
import os
import sys

import fastapi
import uvicorn


def main():
    root, entry, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, root)
    os.chdir(root)
    module_name, _, attr = entry.partition(":")
    mount = getattr(importlib.import_module(module_name), attr)
    app = fastapi.FastAPI()
    mount(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto",
                proxy_headers=False, server_header=False, timeout_keep_alive=75)


if __name__ == "__main__":
    main()
