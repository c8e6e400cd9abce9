"""Greeter agent: an async handler reading its configuration from the environment."""

import asyncio
import os


async def handler(ctx):
    name = ctx.get("name") or "world"
    await asyncio.sleep(0)  # a real agent would await I/O here
    greeting = os.environ.get("GREETING", "Hi")
    punctuation = os.environ.get("PUNCTUATION", "")
    return {"message": f"{greeting}, {name}{punctuation}"}
