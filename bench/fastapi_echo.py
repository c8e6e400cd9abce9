"""FastAPI + uvicorn (uvloop, httptools, 1 worker) serving a package's handler at
POST /invoke: a sync handler in a `def` route (FastAPI runs it in its thread pool), an
async one awaited in an `async def` route; the result in PAR's envelope.

Usage: <venv with fastapi uvicorn uvloop httptools> bench/fastapi_echo.py PACKAGE_ROOT module:handler PORT
"""

import inspect
import sys

import fastapi
import uvicorn

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bare import load  # noqa: E402


def main():
    root, entry, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    handler = load(root, entry)
    app = fastapi.FastAPI()
    if inspect.iscoroutinefunction(handler):
        @app.post("/invoke")
        async def invoke_async(payload: dict = fastapi.Body(...)):
            return {"status": "success", "data": await handler(payload), "error": None}
    else:
        @app.post("/invoke")
        def invoke(payload: dict = fastapi.Body(...)):
            return {"status": "success", "data": handler(payload), "error": None}
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                workers=1, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
