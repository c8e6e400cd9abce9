"""PAR surface host: serves one package's HTTP app on a private Unix socket.

Started by the runtime as ``python -u par_asgi.py`` with the package's environment; all
settings arrive in environment variables prefixed ``PAR_ASGI_`` (removed before agent code
runs):

* ``PAR_ASGI_SOCKET``: path of the Unix socket to listen on (in a private 0700 directory);
* ``PAR_ASGI_ROOT``: the package root, put first on ``sys.path`` as the kit does;
* ``PAR_ASGI_MODE``: ``rest`` (``module:mount``, called ONCE with a new ``fastapi.FastAPI()``)
  or ``asgi`` (``module:attr``, an ASGI app served as is; a function taking no arguments
  is an app factory and is called once; an object with an ``app`` attribute, such as
  pixell-sdk's ``AgentServer``, is served through that attribute);
* ``PAR_ASGI_ENTRY``: the ``module:attr`` to load.

The runtime waits until the socket accepts connections. When the entry cannot be loaded
the host prints one line starting with ``par-asgi: cannot load`` and exits with code 4;
when uvicorn (or fastapi in ``rest`` mode) is missing it exits with code 5. It exits on its
own when its parent process changes (a watchdog thread), so a killed runtime leaves no
orphans.
"""

import importlib
import inspect
import os
import sys
import threading
import time
import traceback

EXIT_ENTRY = 4
EXIT_SERVER_MISSING = 5
EXIT_ORPHANED = 3

# Longer than the runtime's pool idle timeout, so the runtime always closes an idle
# connection first and never sends a request on a connection the server is closing.
KEEP_ALIVE_SECS = 75


def _settings():
    env = os.environ
    cfg = {}
    for key in ("SOCKET", "ROOT", "MODE", "ENTRY"):
        cfg[key.lower()] = env.pop("PAR_ASGI_" + key)
    return cfg


def _watch_parent(original_ppid):
    """Exit when the runtime is gone, even if agent code blocks the event loop."""
    while True:
        time.sleep(1.0)
        if os.getppid() != original_ppid:
            os._exit(EXIT_ORPHANED)


def _resolve(entry):
    module_name, sep, attr = entry.partition(":")
    if not module_name or not sep or not attr:
        raise ValueError(f"entry {entry!r} is not in the form 'module:attr'")
    target = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def _rest_app(fastapi, target, entry):
    if not callable(target):
        raise TypeError(f"rest entry {entry} is not callable")
    app = fastapi.FastAPI()
    result = target(app)
    if inspect.isawaitable(result):
        import asyncio

        asyncio.run(result)
    return app


def _is_factory(target):
    """A plain function taking no arguments builds the app (an ASGI app takes three)."""
    if not inspect.isfunction(target):
        return False
    params = inspect.signature(target).parameters.values()
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params)


def _asgi_app(target, entry):
    if _is_factory(target):
        target = target()
    if not callable(target) and callable(getattr(target, "app", None)):
        target = target.app  # pixell-sdk AgentServer: its FastAPI app
    if not callable(target):
        raise TypeError(f"http_server {entry} is not an ASGI application")
    return target


def _fail(code, message):
    print(f"par-asgi: {message}", file=sys.stderr, flush=True)
    os._exit(code)


def _import_server(mode):
    try:
        import uvicorn
    except ImportError as exc:
        _fail(EXIT_SERVER_MISSING, f"uvicorn is not installed in this environment: {exc}")
    fastapi = None
    if mode == "rest":
        try:
            import fastapi
        except ImportError as exc:
            _fail(EXIT_SERVER_MISSING, f"fastapi is not installed in this environment: {exc}")
    return uvicorn, fastapi


def _load(cfg, fastapi):
    sys.path.insert(0, cfg["root"])
    try:
        target = _resolve(cfg["entry"])
        if cfg["mode"] == "rest":
            return _rest_app(fastapi, target, cfg["entry"])
        return _asgi_app(target, cfg["entry"])
    except BaseException as exc:  # agent code may raise anything while importing
        traceback.print_exc(file=sys.stderr)
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        detail = " | ".join(detail.splitlines())
        _fail(EXIT_ENTRY, f"cannot load {cfg['mode']} entry {cfg['entry']}: {detail}")


def main():
    cfg = _settings()
    if cfg["mode"] not in ("rest", "asgi"):
        _fail(2, f"unknown mode {cfg['mode']!r}")
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    uvicorn, fastapi = _import_server(cfg["mode"])
    app = _load(cfg, fastapi)
    config = uvicorn.Config(
        app,
        uds=cfg["socket"],
        log_level="warning",
        lifespan="auto",
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECS,
    )
    server = uvicorn.Server(config)
    server.run()
    sys.stdout.flush()
    sys.stderr.flush()
    # uvicorn returns after a signal (0), or without having served (a failed lifespan
    # startup usually exits with uvicorn's own code 3 before getting here).
    os._exit(0 if server.started else 1)


if __name__ == "__main__":
    main()
