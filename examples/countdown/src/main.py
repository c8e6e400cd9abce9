"""Countdown agent: an async generator, so PAR streams one Server-Sent Event per item.

It reports usage for the metering ledger and, at the end, calls the word-stats agent
through the runtime (par_runtime.acall: no HTTP, same request id and trace).
"""

import asyncio
import os

import par_runtime  # provided by PAR inside the worker


async def handler(ctx):
    start = min(int(ctx.get("from", 3)), 100)
    gap = min(float(ctx.get("gap", 0.5)), 5.0)
    for n in range(start, 0, -1):
        yield {"n": n}
        par_runtime.report_usage(ticks=1)
        await asyncio.sleep(gap)
    label = os.environ.get("COUNTDOWN_LABEL", "liftoff")
    stats = await par_runtime.acall("word-stats", {"text": label})
    yield {"n": 0, "label": label, "label_words": stats["words"]}
