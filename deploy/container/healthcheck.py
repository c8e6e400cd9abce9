"""Container HEALTHCHECK: exit 0 when `par serve` answers GET /runtime/health with 200.

Reads the port from PAR_LISTEN (default 0.0.0.0:8080) and speaks HTTPS when PAR_TLS_CERT
is set (certificate not verified: this only asks the local process whether it is alive).
Standard library only, so the image needs no curl.
"""

import os
import ssl
import sys
import urllib.request

listen = os.environ.get("PAR_LISTEN", "0.0.0.0:8080")
port = listen.rsplit(":", 1)[-1]
scheme = "https" if os.environ.get("PAR_TLS_CERT") else "http"
context = None
if scheme == "https":
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
try:
    with urllib.request.urlopen(
        f"{scheme}://127.0.0.1:{port}/runtime/health", timeout=4, context=context
    ) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as error:  # noqa: BLE001 - any failure is "unhealthy"
    print(f"healthcheck: {error}", file=sys.stderr)
    sys.exit(1)
