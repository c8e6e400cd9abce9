#!/usr/bin/env python3
"""Writes the synthetic seeds in fuzz/seeds/<target>/ (committed; rerun after changing it).

Seeds that come from the fixtures (packages, agent.yaml, .env files) are not copied here:
fuzz/seed.sh gathers them into fuzz/corpus/, and the replay test reads them in place.
"""
import json
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent
SEEDS = ROOT / "seeds"
PGP = ROOT.parent / "crates" / "par-fuzz-targets" / "data"


def write(target, name, data):
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def archives():
    import io
    import zipfile
    manifest = ("name: p\ndisplay_name: P\ndescription: d\nauthor: a\nlicense: MIT\n"
                "entrypoint: src.main:handler\nmetadata:\n  version: '1'\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("agent.yaml", manifest)
        z.writestr("src/__init__.py", "")
        z.writestr("src/main.py", "def handler(ctx):\n    return ctx\n")
        z.writestr(".env", "A=1\n")
    write("archive", "minimal.apkg", buf.getvalue())
    write("manifest", "minimal.yaml", manifest)


def dotenv():
    write("dotenv", "rules", "# comment\nexport A=1\nB = 'two words'\nC=\"x\\ny\"\n"
          "D=v # not a comment\nNO EQUALS\n=empty\nE=\"unterminated\n")


def frame(kind, call_id, payload):
    return struct.pack(">IBQ", 9 + len(payload), kind, call_id) + payload


def worker_frames():
    result = json.dumps({"ok": True, "result": {"echo": "hi"}}).encode()
    write("worker_frame", "result", frame(2, 7, result))
    write("worker_frame", "two-frames", frame(3, 1, b'{"i":1}') + frame(4, 1, b"{}"))
    write("worker_frame", "short-length", struct.pack(">I", 3) + b"\x01")
    write("worker_frame", "over-limit", struct.pack(">IBQ", 1 << 20, 2, 9))
    write("worker_frame", "truncated", frame(2, 5, b"x" * 40)[:20])


def openpgp():
    for name in ["ed25519.pub.asc", "rsa.pub.gpg"]:
        write("openpgp", "key-" + name, b"\x00" + (PGP / name).read_bytes())
    for name in ["ed25519.sig", "ed25519.asc", "rsa.sig"]:
        write("openpgp", "sig-" + name, b"\x01" + (PGP / name).read_bytes())


def registry_index():
    entry = {"name": "kit-minimal", "version": "1.0.0", "url": "kit-minimal-1.0.0.apkg",
             "sha256": "ab" * 32}
    signed = dict(entry, version="1.0.1", signature="kit-minimal-1.0.1.apkg.sig")
    s3 = dict(entry, version="2.0.0", url="s3://bucket/pkgs/kit-minimal-2.0.0.apkg")
    doc = json.dumps({"version": 1, "packages": [entry, signed, s3]})
    write("registry_index", "http-base", b"\x00" + doc.encode())
    write("registry_index", "local-base", b"\x01" + doc.encode())
    write("registry_index", "duplicate", b"\x00" + json.dumps(
        {"version": 1, "packages": [entry, entry]}).encode())
    write("registry_index", "bad-version", b"\x00" + b'{"version": 2, "packages": []}')


PATHS = ["/agents", "/agents/p", "/agents/p/", "/agents/p/invoke", "/agents/p/ui/",
         "/agents/p/ui/index.html", "/agents/p/api/x", "/agents/p/runs", "/metrics",
         "/openapi.json", "/runtime/agents/p/disable", "/runtime/agents/p/enable",
         "/runtime/health", "/runtime/ready", "/runtime/loads/1", "/runtime/log-level",
         "/runtime/packages", "/runtime/packages/p", "/runtime/packages/p/1.0.0",
         "/runtime/reload", "/runtime/usage", "/a2a/p", "/a2a/p/.well-known/agent-card.json",
         "/mcp", "/mcp/p", "/runs", "/runs/r1", "/runs/r1/cancel", "/runs/r1/events"]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]
CONTENT = ["application/json", "multipart/form-data; boundary=X", "multipart/form-data",
           "application/octet-stream", "text/plain", "application/x-www-form-urlencoded"]
HEADERS = ["accept", "authorization", "x-api-key", "cookie", "host", "origin",
           "sec-fetch-site", "content-length", "expect", "x-request-id", "x-par-upload",
           "x-par-caller-id", "traceparent", "last-event-id", "mcp-session-id",
           "idempotency-key", "upgrade", "connection"]


def chunk(data):
    data = data.encode() if isinstance(data, str) else data
    assert len(data) < 256
    return bytes([len(data)]) + data


def request(method, path, credential=1, content=None, headers=(), body=b"", query=None,
            raw_credential="Bearer not-a-key"):
    """Encodes a request as crates/par-fuzz-targets/src/http.rs reads it."""
    out = bytes([METHODS.index(method), PATHS.index(path)]) + chunk("")
    out += (b"\x01" + chunk(query)) if query is not None else b"\x00"
    out += bytes([credential]) + (chunk(raw_credential) if credential == 3 else b"")
    out += bytes([0 if content is None else CONTENT.index(content) + 1])
    out += bytes([len(headers)])
    for name, value in headers:
        out += bytes([HEADERS.index(name)]) + chunk(value)
    return out + (body.encode() if isinstance(body, str) else body)


def http_routes():
    multipart = ("--X\r\ncontent-disposition: form-data; name=\"payload\"\r\n\r\n{\"a\":1}\r\n"
                 "--X\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
                 "content-type: text/plain\r\n\r\nhello\r\n--X--\r\n")
    seeds = {
        "list-agents": request("GET", "/agents"),
        "invoke-json": request("POST", "/agents/p/invoke", content="application/json",
                               body='{"text": "hi", "nested": [[[1]]]}'),
        "invoke-multipart": request("POST", "/agents/p/invoke",
                                    content="multipart/form-data; boundary=X", body=multipart),
        "upload-multipart": request("POST", "/runtime/packages",
                                    content="multipart/form-data; boundary=X",
                                    headers=[("x-par-upload", "1")], body=multipart),
        "load-json": request("POST", "/runtime/packages", content="application/json",
                             body='{"source": "https://registry.example/p.apkg"}'),
        "log-level": request("PUT", "/runtime/log-level", content="application/json",
                             body='{"level": "debug"}'),
        "usage": request("GET", "/runtime/usage", query="from=2024-01-01&group_by=agent"),
        "mcp": request("POST", "/mcp", content="application/json",
                       body='{"jsonrpc":"2.0","id":1,"method":"tools/list"}'),
        "a2a": request("POST", "/a2a/p", content="application/json",
                       body='{"jsonrpc":"2.0","id":1,"method":"message/send","params":{}}'),
        "surface-upgrade": request("GET", "/agents/p/api/x",
                                   headers=[("connection", "upgrade"), ("upgrade", "websocket")]),
        "cross-site": request("POST", "/runtime/reload",
                              credential=0, content="text/plain",
                              headers=[("origin", "https://evil.example"),
                                       ("sec-fetch-site", "cross-site")]),
        "bad-auth": request("GET", "/runtime/packages", credential=3),
        "metrics": request("GET", "/metrics", credential=0),
    }
    for name, data in seeds.items():
        write("http_routes", name, data)


if __name__ == "__main__":
    shutil.rmtree(SEEDS, ignore_errors=True)
    archives()
    dotenv()
    worker_frames()
    openpgp()
    registry_index()
    http_routes()
