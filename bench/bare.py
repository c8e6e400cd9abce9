"""The Python floor: one process, asyncio.Protocol, minimal HTTP/1.1 keep-alive parsing,
and the package's own handler called inline (sync) or awaited in a task (async).

No routing, checks, isolation or metering: what a call costs in bare Python, so PAR's
ratio to it is what hosting costs. Answers every POST with the handler's result in
PAR's envelope `{"status":"success","data":...,"error":null}`.

Usage: <package venv python> bench/bare.py PACKAGE_ROOT module:handler PORT
"""

import asyncio
import importlib
import inspect
import json
import os
import sys

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"


def load(root, entry):
    root = os.path.abspath(root)
    sys.path.insert(0, root)
    os.chdir(root)
    module_name, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class Http(asyncio.Protocol):
    handler = None
    is_async = False

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            at = head.find(b"content-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15:stop if stop > 0 else len(head)])
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            payload = json.loads(body) if body else {}
            if self.is_async:
                asyncio.ensure_future(self.answer(payload))
            else:
                self.reply(self.handler(payload))

    async def answer(self, payload):
        self.reply(await self.handler(payload))

    def reply(self, result):
        out = b'{"status":"success","data":' + _dumps(result).encode() + b',"error":null}'
        self.transport.write(_HEAD % len(out) + out)


def main():
    root, entry, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    Http.handler = staticmethod(load(root, entry))
    Http.is_async = inspect.iscoroutinefunction(Http.handler)

    async def serve():
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
