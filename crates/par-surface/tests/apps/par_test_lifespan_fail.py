"""An ASGI app whose lifespan startup fails: uvicorn gives up before serving."""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
