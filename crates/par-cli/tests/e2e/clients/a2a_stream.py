"""Drives PAR with pixell-sdk's own A2AClient: discovery through GET /agents, the agent
card, then message/stream, printing each event with the time it arrived (JSON lines)."""

import asyncio
import json
import sys
import time

from pixell.sdk.a2a.client import A2AClient


async def main(base, agent_id, text):
    client = await A2AClient.from_discovery(base, agent_id=agent_id, max_retries=1)
    async with client:
        info = await client.get_agent_info()
        print(json.dumps({"card": info.name, "url": client.agent_url}), flush=True)
        started = time.monotonic()
        async for event in client.stream_message(text):
            at = time.monotonic() - started
            print(json.dumps({"type": event.type, "status": event.status, "percent": event.percent,
                              "data": event.data, "session": event.session_id, "at": at}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
