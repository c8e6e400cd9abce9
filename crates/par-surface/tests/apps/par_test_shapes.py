"""Other shapes an `http_server` entry takes: an app factory, and an object with `.app`
(what pixell-sdk's AgentServer is)."""

import json


async def _app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({"served_by": "par_test_shapes", "path": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def create_app():
    return _app


class Server:
    """Like pixell-sdk's AgentServer: not callable itself, its app in `.app`."""

    @property
    def app(self):
        return _app


server = Server()
