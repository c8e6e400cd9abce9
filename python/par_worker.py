"""PAR worker: hosts one package's entrypoint and answers framed calls from the runtime.

Started by the runtime as ``python par_worker.py``; all settings arrive in environment
variables prefixed ``PAR_WORKER_`` (removed before agent code runs). The worker connects to
the runtime's Unix socket, imports the entrypoint once, reports READY, then serves many
concurrent calls: coroutine functions run on the event loop, plain functions in a thread
pool, async generators stream one ITEM frame per yielded value.

Frame: 4-byte big-endian length of what follows, 1-byte kind, 8-byte big-endian call id,
then the payload (UTF-8 JSON unless stated). See docs/architecture.md for the kinds.
"""

import asyncio
import concurrent.futures
import contextvars
import importlib
import inspect
import json
import os
import struct
import sys
import threading
import time
import traceback
import types

HEADER = struct.Struct(">IBQ")

# host -> worker
CALL, CANCEL, SHUTDOWN = 1, 2, 3
# worker -> host
READY, FATAL, RESULT, ERROR, ITEM, END, USAGE = 10, 11, 12, 13, 14, 15, 16

# The call the current code runs for: (call id, request id, traceparent). Tasks and
# executor threads each see their own, so concurrent calls never mix their usage.
_CURRENT = contextvars.ContextVar("par_current_call", default=None)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _settings():
    env = os.environ
    cfg = {
        "socket": env.pop("PAR_WORKER_SOCKET"),
        "root": env.pop("PAR_WORKER_ROOT"),
        "entry": env.pop("PAR_WORKER_ENTRY"),
        "threads": int(env.pop("PAR_WORKER_THREADS", "32")),
        "max_frame": int(env.pop("PAR_WORKER_MAX_FRAME", str(64 * 1024 * 1024))),
    }
    return cfg


def _error_payload(exc):
    return _dumps({"type": type(exc).__name__, "message": str(exc)}).encode()


def _load_entry(root, entry):
    """Import ``module:attr`` with the package root first on sys.path, as the kit does."""
    module_name, _, attr = entry.partition(":")
    sys.path.insert(0, root)
    module = importlib.import_module(module_name)
    target = module
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"entrypoint {entry} is not callable")
    return target


def _install_par_runtime(worker_ref):
    """Provide `import par_runtime` to agent code without installing anything."""
    module = types.ModuleType("par_runtime")
    module.__doc__ = "Runtime services for agents hosted by PAR."

    def report_usage(**counts):
        """Attach usage (e.g. tokens_in=..., model=...) to the current call's record."""
        current = _CURRENT.get()
        worker = worker_ref.get("worker")
        if current is None or worker is None:
            raise RuntimeError("report_usage() called outside a PAR call")
        payload = _dumps(counts).encode()
        worker.loop.call_soon_threadsafe(worker.send, USAGE, current[0], payload)

    def request_id():
        current = _CURRENT.get()
        return current[1] if current else None

    def traceparent():
        """The W3C traceparent of the current call, to pass on to outgoing requests."""
        current = _CURRENT.get()
        return current[2] if current else None

    module.report_usage = report_usage
    module.request_id = request_id
    module.traceparent = traceparent
    sys.modules["par_runtime"] = module


def _watch_parent(original_ppid):
    """Exit when the runtime is gone, even if agent code blocks the event loop."""
    while True:
        time.sleep(1.0)
        if os.getppid() != original_ppid:
            os._exit(3)


class Worker:
    def __init__(self, handler, writer, threads):
        self.handler = handler
        self.writer = writer
        self.tasks = {}
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="par-call"
        )
        self.is_async = inspect.iscoroutinefunction(handler)
        self.is_asyncgen = inspect.isasyncgenfunction(handler)
        self.is_gen = inspect.isgeneratorfunction(handler)
        self.loop = asyncio.get_running_loop()

    def send(self, kind, call_id, payload=b""):
        self.writer.write(HEADER.pack(len(payload) + 9, kind, call_id) + payload)

    def start_call(self, call_id, body):
        task = asyncio.ensure_future(self.run_call(call_id, body))
        self.tasks[call_id] = task
        task.add_done_callback(lambda _t: self.tasks.pop(call_id, None))

    def cancel(self, call_id):
        task = self.tasks.get(call_id)
        if task is not None:
            task.cancel()

    async def run_call(self, call_id, body):
        try:
            request = json.loads(body)
            payload = request["p"]
            _CURRENT.set((call_id, request.get("rid"), request.get("tp")))
            if self.is_asyncgen:
                await self.stream_async(call_id, payload)
            elif self.is_gen:
                await self.stream_sync(call_id, payload)
            else:
                result = await self.invoke(payload)
                self.send(RESULT, call_id, _dumps(result).encode())
        except asyncio.CancelledError:
            self.send(ERROR, call_id, _dumps({"type": "CancelledError", "message": "cancelled"}).encode())
        except BaseException as exc:  # agent code may raise anything; report, never die
            self.send(ERROR, call_id, _error_payload(exc))

    async def invoke(self, payload):
        if self.is_async:
            return await self.handler(payload)
        context = contextvars.copy_context()
        result = await self.loop.run_in_executor(self.pool, context.run, self.handler, payload)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def stream_async(self, call_id, payload):
        async for item in self.handler(payload):
            self.send(ITEM, call_id, _dumps(item).encode())
            await self.writer.drain()
        self.send(END, call_id)

    async def stream_sync(self, call_id, payload):
        context = contextvars.copy_context()
        iterator = context.run(self.handler, payload)
        done = object()
        while True:
            item = await self.loop.run_in_executor(self.pool, context.run, next, iterator, done)
            if item is done:
                break
            self.send(ITEM, call_id, _dumps(item).encode())
            await self.writer.drain()
        self.send(END, call_id)


async def _serve(cfg):
    reader, writer = await asyncio.open_unix_connection(cfg["socket"], limit=1 << 20)
    worker_ref = {}
    _install_par_runtime(worker_ref)
    try:
        handler = _load_entry(cfg["root"], cfg["entry"])
    except BaseException as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        print(f"par-worker: cannot load entrypoint {cfg['entry']}: {detail}", file=sys.stderr)
        payload = _dumps({"type": type(exc).__name__, "message": str(exc)}).encode()
        writer.write(HEADER.pack(len(payload) + 9, FATAL, 0) + payload)
        await writer.drain()
        return 4
    worker = Worker(handler, writer, cfg["threads"])
    worker_ref["worker"] = worker
    kind = "asyncgen" if worker.is_asyncgen else "async" if worker.is_async else "sync"
    info = {"pid": os.getpid(), "python": sys.version.split()[0], "kind": kind}
    worker.send(READY, 0, _dumps(info).encode())
    await writer.drain()
    return await _read_loop(reader, worker, cfg["max_frame"])


async def _read_loop(reader, worker, max_frame):
    while True:
        try:
            header = await reader.readexactly(HEADER.size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return 0  # the runtime closed the channel: exit quietly
        length, kind, call_id = HEADER.unpack(header)
        if length < 9 or length > max_frame:
            print(f"par-worker: bad frame length {length}", file=sys.stderr)
            return 5
        body = await reader.readexactly(length - 9)
        if kind == CALL:
            worker.start_call(call_id, body)
        elif kind == CANCEL:
            worker.cancel(call_id)
        elif kind == SHUTDOWN:
            return 0
        await worker.writer.drain()


def main():
    cfg = _settings()
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    code = asyncio.run(_serve(cfg))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
