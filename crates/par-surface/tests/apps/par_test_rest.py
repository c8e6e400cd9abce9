"""REST surface for the proxy tests: mount(app) adds routes that report what arrived.

Also counts the HTTP connections uvicorn accepts, so tests can check pooling.
"""

import asyncio
import hashlib
import os

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

_OPENED = {"count": 0}


def _count_connections():
    """Wrap uvicorn's protocol classes so every accepted connection is counted."""
    targets = []
    try:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        targets.append(H11Protocol)
    except ImportError:
        pass
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        targets.append(HttpToolsProtocol)
    except ImportError:
        pass
    for cls in targets:
        original = cls.connection_made

        def counting(self, transport, _original=original):
            _OPENED["count"] += 1
            return _original(self, transport)

        cls.connection_made = counting


_count_connections()
MOUNTS = {"count": 0}


def mount(app):
    MOUNTS["count"] += 1

    @app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(rest: str, request: Request):
        body = await request.body()
        status = int(request.query_params.get("status", "200"))
        payload = {
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope.get("raw_path", b"").decode("latin-1"),
            "query": request.url.query,
            "headers": {k: v for k, v in request.headers.items()},
            "header_lists": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]],
            "body": body.decode("utf-8", "replace"),
            "pid": os.getpid(),
            "mounts": MOUNTS["count"],
        }
        headers = {"x-echo": "yes", "set-cookie": "a=1"}
        return JSONResponse(payload, status_code=status, headers=headers)

    @app.post("/upload")
    async def upload(request: Request):
        digest = hashlib.sha256()
        size = 0
        chunks = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
            chunks += 1
        return {"size": size, "sha256": digest.hexdigest(), "chunks": chunks}

    @app.post("/first-chunk")
    async def first_chunk(request: Request):
        # Answers as soon as the first chunk arrives: proves the host streams uploads.
        async for chunk in request.stream():
            if chunk:
                return {"first": len(chunk)}
        return {"first": 0}

    @app.get("/big")
    async def big(n: int, chunk: int = 65536):
        async def produce():
            left = n
            while left > 0:
                step = min(chunk, left)
                left -= step
                yield b"x" * step

        return StreamingResponse(produce(), media_type="application/octet-stream")

    @app.get("/sse")
    async def sse(n: int = 3, gap_ms: int = 200):
        async def events():
            import time

            for i in range(n):
                if i:
                    await asyncio.sleep(gap_ms / 1000)
                yield f"data: {{\"i\": {i}, \"produced_at\": {time.time()}}}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/slow")
    async def slow(secs: float):
        await asyncio.sleep(secs)
        return {"slept": secs}

    @app.get("/sleepy")
    async def sleepy(ms: int = 50):
        await asyncio.sleep(ms / 1000)
        return {"ok": True}

    @app.get("/conns")
    async def conns():
        return {"opened": _OPENED["count"]}

    @app.get("/no-content")
    async def no_content():
        return Response(status_code=204)

