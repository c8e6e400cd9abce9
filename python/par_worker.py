"""PAR worker: hosts one package's entrypoint and answers framed calls from the runtime.

Started by the runtime as ``python par_worker.py``; all settings arrive in environment
variables prefixed ``PAR_WORKER_`` (removed before agent code runs). The worker connects to
the runtime's Unix socket, imports the entrypoint once, reports READY, then serves many
concurrent calls: coroutine functions run on the event loop, plain functions in a thread
pool, async generators stream one ITEM frame per yielded value.

Frame: 4-byte big-endian length of what follows, 1-byte kind, 8-byte big-endian call id,
then the payload (UTF-8 JSON unless stated). See docs/architecture.md for the kinds.
"""

import importlib.util
import sys
import threading
import types

# Standard modules asyncio imports but neither it nor this worker uses on a plain call:
# each is a stand-in until code first reads one of its attributes, then the real module
# (the same object). A worker of a plain package saves about 1.4 MiB (inspect brings
# ast, dis and tokenize); code that uses them pays the import where it would anyway.
# Measured in docs/performance.md ("Issue 13/14 targets").
_DEFERRED = ("inspect", "linecache", "tokenize", "textwrap", "base64", "locale")
_DEFERRED_LOCK = threading.RLock()


class _DeferredModule(types.ModuleType):
    """A module whose code runs on the first read of an attribute it does not hold yet."""

    # The scheme of importlib.util.LazyLoader (module_from_spec now, exec_module on first
    # use), written out because LazyLoader was made safe for threads only recently (CPython
    # gh-114763) and packages run on older Pythons. One re-entrant lock for all six: their
    # imports of each other run on the thread that holds it. What it cannot rule out is a
    # thread that holds another module's import lock and first touches one of these while
    # this import needs that very module; the six import only standard modules, almost
    # all loaded before the first call, so that circle needs a rare first import of one.
    def __getattr__(self, attr):
        with _DEFERRED_LOCK:  # threads that race here wait for one complete import
            if type(self) is _DeferredModule:
                self.__spec__.loader.exec_module(self)
                self.__class__ = types.ModuleType
        return types.ModuleType.__getattribute__(self, attr)


def _defer_imports(names):
    for name in names:
        spec = None if name in sys.modules else importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        module.__class__ = _DeferredModule
        sys.modules[name] = module


_defer_imports(_DEFERRED)

import asyncio  # noqa: E402  (after the stand-ins, which it imports)
import collections  # noqa: E402
import collections.abc  # noqa: E402
import concurrent.futures  # noqa: E402
import contextvars  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

HEADER = struct.Struct(">IBQ")

# host -> worker
CALL, CANCEL, SHUTDOWN, OUT_RESULT, OUT_ERROR, PING, FORK = 1, 2, 3, 4, 5, 6, 7
# worker -> host
READY, FATAL, RESULT, ERROR, ITEM, END, USAGE, OUTCALL, PONG, FORKED = 10, 11, 12, 13, 14, 15, 16, 17, 18, 19

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
        "zygote": env.pop("PAR_WORKER_ZYGOTE", "") == "1",
    }
    return cfg


# Code flags (the values inspect tests), so the worker itself never loads inspect.
CO_GENERATOR, CO_COROUTINE, CO_ITERABLE_COROUTINE, CO_ASYNC_GENERATOR = 0x20, 0x80, 0x100, 0x200


def _handler_is(handler, flag, test):
    """inspect.<test>(handler): by inspect when agent code has loaded it already (a
    library may have marked the handler with inspect.markcoroutinefunction, Python 3.12+),
    else by the code flags of the function it runs, through bound methods and partials."""
    inspect = sys.modules.get("inspect")
    if inspect is not None and type(inspect) is not _DeferredModule:
        return getattr(inspect, test)(handler)
    while isinstance(handler, (types.MethodType, functools.partial)):
        handler = handler.__func__ if isinstance(handler, types.MethodType) else handler.func
    code = getattr(handler, "__code__", None)
    return isinstance(code, types.CodeType) and bool(code.co_flags & flag)


def _isawaitable(value):
    """inspect.isawaitable, without loading inspect."""
    if isinstance(value, types.GeneratorType):
        return bool(value.gi_code.co_flags & CO_ITERABLE_COROUTINE)
    return isinstance(value, collections.abc.Awaitable)


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


class AgentCallError(Exception):
    """An agent called through par_runtime.call/acall failed.

    ``code`` is the runtime's error code (``agent_error``, ``timeout``,
    ``agent_not_found``, ``call_depth_exceeded``, ...), ``agent`` the id that was called.
    """

    def __init__(self, agent, code, message):
        super().__init__(f"[{code}] {agent}: {message}")
        self.agent = agent
        self.code = code
        self.message = message


def _outcall_request(agent_id, payload, timeout):
    if not isinstance(agent_id, str) or not agent_id:
        raise TypeError("agent_id must be a non-empty string")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise TypeError("payload must be a dict (it becomes the called handler's one argument)")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError("timeout must be a positive number of seconds")
    return {"agent": agent_id, "p": payload, "timeout": timeout}


def _install_par_runtime(worker_ref):
    """Provide `import par_runtime` to agent code without installing anything."""
    module = types.ModuleType("par_runtime")
    module.__doc__ = "Runtime services for agents hosted by PAR."

    def _current_worker(what):
        current = _CURRENT.get()
        worker = worker_ref.get("worker")
        if current is None or worker is None:
            raise RuntimeError(f"{what}() called outside a PAR call")
        return current, worker

    async def acall(agent_id, payload=None, *, timeout=None):
        """Call a mounted agent (private sub-agents included) and return its result.

        Raises AgentCallError with the runtime's error code when the call fails.
        """
        current, worker = _current_worker("acall")
        request = _outcall_request(agent_id, payload, timeout)
        on_worker_loop = asyncio.get_running_loop() is worker.loop
        call = worker.outcall(current[0], request)
        if on_worker_loop:
            return await call
        # Agent code running its own event loop (in a thread): hop to the worker's loop.
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, worker.loop))

    def call(agent_id, payload=None, *, timeout=None):
        """Blocking form of acall, for plain (sync) handlers running in a thread."""
        current, worker = _current_worker("call")
        request = _outcall_request(agent_id, payload, timeout)
        if threading.get_ident() == worker.loop_thread:
            raise RuntimeError("par_runtime.call() would block the event loop; use await par_runtime.acall()")
        future = asyncio.run_coroutine_threadsafe(worker.outcall(current[0], request), worker.loop)
        return future.result()

    def report_usage(**counts):
        """Attach usage (e.g. tokens_in=..., model=...) to the current call's record."""
        current = _CURRENT.get()
        worker = worker_ref.get("worker")
        if current is None or worker is None:
            raise RuntimeError("report_usage() called outside a PAR call")
        payload = _dumps(counts).encode()
        if len(payload) + 9 > worker.max_frame:
            raise ValueError(f"usage report of {len(payload)} bytes is over the frame limit")
        if threading.get_ident() == worker.loop_thread:
            worker.send(USAGE, current[0], payload)
        elif current[0] in worker.sync_calls:
            worker.threads.post(current[0], USAGE, payload)  # ahead of the call's result
        else:
            worker.loop.call_soon_threadsafe(worker.send, USAGE, current[0], payload)

    def request_id():
        current = _CURRENT.get()
        return current[1] if current else None

    def traceparent():
        """The W3C traceparent of the current call, to pass on to outgoing requests."""
        current = _CURRENT.get()
        return current[2] if current else None

    module.AgentCallError = AgentCallError
    module.call = call
    module.acall = acall
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


class Channel(asyncio.Protocol):
    """The runtime's socket: frames cut from buffered reads, written in batches.

    Frames sent during one turn of the event loop leave in one write; `drain` waits
    while the kernel's buffer is full. `done` resolves with the exit code.
    """

    def __init__(self, max_frame):
        self.max_frame = max_frame
        self.worker = None
        self.transport = None
        self.inbuf = bytearray()
        self.out = bytearray()
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        self.resumed = None  # a future while writing is paused

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buf = self.inbuf
        buf += data
        pos, size = 0, len(buf)
        while size - pos >= HEADER.size:
            length, kind, call_id = HEADER.unpack_from(buf, pos)
            if length < 9 or length > self.max_frame:
                print(f"par-worker: bad frame length {length}", file=sys.stderr)
                self.finish(5)
                return
            end = pos + 4 + length
            if end > size:
                break
            body = bytes(buf[pos + HEADER.size:end])
            pos = end
            if self.worker is not None and self.worker.dispatch(kind, call_id, body):
                self.finish(0)
                return
        del buf[:pos]

    def connection_lost(self, exc):
        self.finish(0)  # the runtime closed the channel: exit quietly

    def finish(self, code):
        if not self.done.done():
            self.done.set_result(code)

    def write(self, data):
        if not self.out:
            self.loop.call_soon(self.write_out)
        self.out += data

    def write_out(self):
        if self.out:
            self.transport.write(bytes(self.out))
            self.out.clear()

    async def drain(self):
        self.write_out()
        if self.resumed is not None:
            await self.resumed

    def pause_writing(self):
        if self.resumed is None:
            self.resumed = self.loop.create_future()

    def resume_writing(self):
        if self.resumed is not None:
            self.resumed.set_result(None)
            self.resumed = None


class CallThreads:
    """Threads for sync handlers, fed by a queue: no Task or executor future per call.

    A thread is started when a call finds none free, up to `limit`; a finished result
    goes back to the event loop in batches (one wake-up for all results ready by then).
    """

    def __init__(self, worker, limit):
        self.worker = worker
        self.limit = limit
        self.jobs = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads = 0
        self.free = 0
        self.results = collections.deque()
        self.flush_pending = False

    def submit(self, call_id, body):
        with self.lock:
            if self.free > 0:
                self.free -= 1
                start = False
            else:
                start = self.threads < self.limit
                self.threads += start
        self.jobs.put((call_id, body))
        if start:
            threading.Thread(target=self.serve, name="par-call", daemon=True).start()

    def serve(self):
        worker = self.worker
        while True:
            call_id, body = self.jobs.get()
            if call_id in worker.sync_calls:
                self.post(call_id, *worker.tracked(call_id, worker.run_sync, call_id, body))
            with self.lock:
                self.free += 1

    def post(self, call_id, kind, payload):
        self.results.append((call_id, kind, payload))
        with self.lock:
            if self.flush_pending:
                return
            self.flush_pending = True
        self.worker.loop.call_soon_threadsafe(self.flush)

    def flush(self):
        with self.lock:
            self.flush_pending = False
        worker = self.worker
        while self.results:
            call_id, kind, payload = self.results.popleft()
            if kind == USAGE:
                if call_id in worker.sync_calls:
                    worker.send(USAGE, call_id, payload)
                continue
            if worker.sync_calls.pop(call_id, None) is None:
                continue  # cancelled meanwhile: already answered
            if kind == RESULT:
                worker.send_reply(RESULT, call_id, payload)
            else:
                worker.send(kind, call_id, payload)


class Worker:
    def __init__(self, handler, writer, threads, max_frame):
        self.handler = handler
        self.max_frame = max_frame
        self.writer = writer
        self.tasks = {}
        # Sync calls in the threads' hands, by id (removed when answered or cancelled).
        self.sync_calls = {}
        self.threads = CallThreads(self, threads)
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="par-stream"
        )
        self.is_async = _handler_is(handler, CO_COROUTINE, "iscoroutinefunction")
        self.is_asyncgen = _handler_is(handler, CO_ASYNC_GENERATOR, "isasyncgenfunction")
        self.is_gen = _handler_is(handler, CO_GENERATOR, "isgeneratorfunction")
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        # Agent-to-agent calls waiting for the host's answer, by reference.
        self.outcalls = {}
        self.next_ref = 1
        # Sync calls on a thread now (call id -> jobs), and those of them the host gave
        # up on (call id -> when): a thread cannot be cancelled, so an abandoned call holds
        # it until the handler returns. PONG tells the host, which replaces a worker whose
        # threads are held that way past its grace.
        self.sync_lock = threading.Lock()
        self.running = {}
        self.abandoned = {}

    def send(self, kind, call_id, payload=b""):
        self.writer.write(HEADER.pack(len(payload) + 9, kind, call_id) + payload)

    def send_reply(self, kind, call_id, payload):
        """Send a RESULT or ITEM; one over the frame limit becomes an ERROR saying so
        (the host would refuse the frame and replace this worker). False if it did."""
        if len(payload) + 9 <= self.max_frame:
            self.send(kind, call_id, payload)
            return True
        what = "result" if kind == RESULT else "streamed item"
        message = f"the {what} is {len(payload)} bytes as JSON, over the limit of {self.max_frame - 9}"
        error = {"type": "ResultTooLarge", "code": "result_too_large", "message": message}
        self.send(ERROR, call_id, _dumps(error).encode())
        return False

    async def outcall(self, call_id, request):
        """Ask the host to run an agent call for call `call_id`; runs on the worker loop."""
        ref = self.next_ref
        self.next_ref += 1
        future = self.loop.create_future()
        body = _dumps({"ref": ref, **request}).encode()
        if len(body) + 9 > self.max_frame:
            raise AgentCallError(request["agent"], "too_large", f"the payload is {len(body)} bytes, over the frame limit")
        self.outcalls[ref] = (request["agent"], future)
        try:
            self.send(OUTCALL, call_id, body)
            await self.writer.drain()
            return await future
        finally:
            self.outcalls.pop(ref, None)

    def answer_outcall(self, ref, kind, body):
        entry = self.outcalls.get(ref)
        if entry is None or entry[1].done():
            return  # the caller stopped waiting (cancelled or timed out)
        agent, future = entry
        if kind == OUT_RESULT:
            future.set_result(json.loads(body))
        else:
            error = json.loads(body)
            future.set_exception(AgentCallError(agent, error.get("code"), error.get("message")))

    def dispatch(self, kind, call_id, body):
        """Acts on one frame from the runtime; True when the worker should exit."""
        if kind == CALL:
            self.start_call(call_id, body)
        elif kind == CANCEL:
            self.cancel(call_id)
        elif kind in (OUT_RESULT, OUT_ERROR):
            self.answer_outcall(call_id, kind, body)
        elif kind == PING:
            self.send(PONG, call_id, self.health())  # the health check: this loop still runs
        elif kind == SHUTDOWN:
            return True
        return False

    def run_sync(self, call_id, body):
        """In a call thread: the handler with the call's own (fresh) context."""
        try:
            request = json.loads(body)
            current = (call_id, request.get("rid"), request.get("tp"))
            result = contextvars.Context().run(self._call_sync, current, request["p"])
            if _isawaitable(result):
                future = asyncio.run_coroutine_threadsafe(_awaited(result), self.loop)
                result = future.result()
            return RESULT, _dumps(result).encode()
        except BaseException as exc:  # agent code may raise anything; report, never die
            return ERROR, _error_payload(exc)

    def _call_sync(self, current, payload):
        _CURRENT.set(current)
        return self.handler(payload)

    def start_call(self, call_id, body):
        if not (self.is_async or self.is_asyncgen or self.is_gen):
            self.sync_calls[call_id] = True
            self.threads.submit(call_id, body)
            return
        task = asyncio.ensure_future(self.run_call(call_id, body))
        self.tasks[call_id] = task
        task.add_done_callback(lambda _t: self.tasks.pop(call_id, None))

    def tracked(self, call_id, fn, *args):
        """In a thread: fn(*args), noting the call while the thread is busy with it."""
        with self.sync_lock:
            self.running[call_id] = self.running.get(call_id, 0) + 1
        try:
            return fn(*args)
        finally:
            with self.sync_lock:
                left = self.running.pop(call_id, 1) - 1
                if left:
                    self.running[call_id] = left
                else:
                    self.abandoned.pop(call_id, None)

    def health(self):
        """PONG's payload: threads held by calls the host abandoned, and the oldest's age."""
        with self.sync_lock:
            count = len(self.abandoned)
            oldest = time.monotonic() - min(self.abandoned.values()) if self.abandoned else 0.0
        return _dumps({"abandoned": count, "oldest_s": round(oldest, 3)}).encode()

    def cancel(self, call_id):
        with self.sync_lock:
            if call_id in self.running:
                self.abandoned.setdefault(call_id, time.monotonic())
        if self.sync_calls.pop(call_id, None) is not None:
            # The thread runs on (it cannot be interrupted); its result will be dropped.
            self.send(ERROR, call_id, _dumps({"type": "CancelledError", "message": "cancelled"}).encode())
            return
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
                self.send_reply(RESULT, call_id, _dumps(result).encode())
        except asyncio.CancelledError:
            self.send(ERROR, call_id, _dumps({"type": "CancelledError", "message": "cancelled"}).encode())
        except BaseException as exc:  # agent code may raise anything; report, never die
            self.send(ERROR, call_id, _error_payload(exc))

    async def invoke(self, payload):
        return await self.handler(payload)

    async def stream_async(self, call_id, payload):
        stream = self.handler(payload)
        try:
            async for item in stream:
                if not self.send_reply(ITEM, call_id, _dumps(item).encode()):
                    return
                await self.writer.drain()
        finally:
            await stream.aclose()
        self.send(END, call_id)

    async def stream_sync(self, call_id, payload):
        context = contextvars.copy_context()
        iterator = context.run(self.handler, payload)
        done = object()
        while True:
            item = await self.loop.run_in_executor(
                self.pool, self.tracked, call_id, context.run, next, iterator, done
            )
            if item is done:
                break
            if not self.send_reply(ITEM, call_id, _dumps(item).encode()):
                iterator.close()
                return
            await self.writer.drain()
        self.send(END, call_id)


def _fatal_frame(cfg, exc):
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    print(f"par-worker: cannot load entrypoint {cfg['entry']}: {detail}", file=sys.stderr)
    payload = _dumps({"type": type(exc).__name__, "message": str(exc)}).encode()
    return HEADER.pack(len(payload) + 9, FATAL, 0) + payload


async def _awaited(awaitable):
    return await awaitable


async def _serve(cfg, handler=None, worker_ref=None):
    """Serve calls on cfg["socket"]; `handler` is given when a zygote imported it."""
    loop = asyncio.get_running_loop()
    _, writer = await loop.create_unix_connection(lambda: Channel(cfg["max_frame"]), cfg["socket"])
    if handler is None:
        worker_ref = {}
        _install_par_runtime(worker_ref)
        try:
            handler = _load_entry(cfg["root"], cfg["entry"])
        except BaseException as exc:
            writer.write(_fatal_frame(cfg, exc))
            await writer.drain()
            return 4
    worker = Worker(handler, writer, cfg["threads"], cfg["max_frame"])
    worker_ref["worker"] = worker
    kind = "asyncgen" if worker.is_asyncgen else "async" if worker.is_async else "sync"
    info = {"pid": os.getpid(), "python": sys.version.split()[0], "kind": kind}
    writer.worker = worker
    worker.send(READY, 0, _dumps(info).encode())
    await writer.drain()
    return await writer.done


def _recv_frame(stream, max_frame):
    """One frame from a blocking file object, or None at the end of the channel."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    length, kind, call_id = HEADER.unpack(header)
    if length < 9 or length > max_frame:
        return None
    body = stream.read(length - 9)
    return (kind, call_id, body) if len(body) == length - 9 else None


def _zygote(cfg):
    """A package's zygote: the interpreter with the entrypoint imported, forking workers.

    It runs exactly where a worker would (same jail, environment, sys.path and cwd: the
    runtime starts it the way it starts a worker), stays single-threaded and runs no event
    loop, so a fork is a clean copy. Each FORK frame names the socket of a new worker; the
    child connects there and serves as a worker started fresh would. The zygote exits when
    the runtime closes its channel.
    """
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.connect(cfg["socket"])
    worker_ref = {}
    _install_par_runtime(worker_ref)
    try:
        handler = _load_entry(cfg["root"], cfg["entry"])
    except BaseException as exc:
        control.sendall(_fatal_frame(cfg, exc))
        return 4
    # Objects alive now are never collected again: forked workers then share their pages
    # instead of copying them when the collector touches reference counts and links.
    gc.freeze()
    # Workers are reaped by the kernel; the zygote never waits for them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    info = {"pid": os.getpid(), "python": sys.version.split()[0], "kind": "zygote"}
    payload = _dumps(info).encode()
    control.sendall(HEADER.pack(len(payload) + 9, READY, 0) + payload)
    stream = control.makefile("rb")
    while True:
        frame = _recv_frame(stream, cfg["max_frame"])
        if frame is None or frame[0] == SHUTDOWN:
            return 0
        kind, ref, body = frame
        if kind != FORK:
            continue
        pid = os.fork()
        if pid == 0:
            stream.close()
            control.close()
            _forked_worker(dict(cfg, socket=body.decode()), handler, worker_ref)
        payload = _dumps({"pid": pid}).encode()
        control.sendall(HEADER.pack(len(payload) + 9, FORKED, ref) + payload)


def _forked_worker(cfg, handler, worker_ref):
    """In a child of the zygote: become a worker. Never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setpgid(0, 0)  # its own group: the runtime stops it and what it started, alone
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
        code = asyncio.run(_serve(cfg, handler, worker_ref))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main():
    cfg = _settings()
    if cfg["zygote"]:
        code = _zygote(cfg)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    code = asyncio.run(_serve(cfg))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
