"""Real Python HTTP clients through the egress proxy, configured only by the standard
proxy variables (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY). Prints one JSON object of results;
the Rust test asserts on it."""

import json
import ssl
import sys
import urllib.error
import urllib.request

import httpx

cfg = json.loads(sys.argv[1])
ctx = ssl.create_default_context(cafile=cfg["cafile"])
results = {}


def record(name, call):
    try:
        status, body = call()
        results[name] = {"status": status, "body": body}
    except urllib.error.HTTPError as e:
        results[name] = {"error": "HTTPError", "status": e.code, "body": e.read().decode()}
    except Exception as e:  # noqa: BLE001 - the test wants to see any failure
        results[name] = {"error": type(e).__name__, "message": str(e)}


def urllib_get(url):
    def call():
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(), urllib.request.HTTPSHandler(context=ctx)
        )
        with opener.open(url, timeout=20) as r:
            return r.status, r.read().decode()

    return call


def httpx_get(url):
    def call():
        with httpx.Client(verify=ctx, timeout=20) as client:
            r = client.get(url)
            return r.status_code, r.text

    return call


for name, url in cfg["urls"].items():
    record("urllib_" + name, urllib_get(url))
    record("httpx_" + name, httpx_get(url))

print(json.dumps(results))
