"""Drives PAR's MCP endpoint with the official MCP Python SDK (mcp 2.3.0): connects in
the given mode (`legacy`: the initialize handshake; `auto`: server/discover first; or a
pinned modern revision such as `2026-07-28`), lists the tools, calls each call given,
and prints one JSON object: the negotiated version, the tools and the call results.

usage: mcp_client.py URL MODE CALLS_JSON [API_KEY]
CALLS_JSON is a list of [tool, arguments]."""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url, mode, calls, api_key=None):
    headers = {"x-api-key": api_key} if api_key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode) as client:
            tools = await client.list_tools()
            out = {
                "version": client.protocol_version,
                "tools": [
                    {"name": t.name, "description": t.description, "inputSchema": t.input_schema}
                    for t in tools.tools
                ],
                "calls": [],
            }
            for name, arguments in calls:
                try:
                    result = await client.call_tool(name, arguments)
                except Exception as e:  # a JSON-RPC error: report it, as a caller would
                    out["calls"].append({"exception": type(e).__name__, "message": str(e)})
                    continue
                out["calls"].append({
                    "isError": result.is_error,
                    "structured": result.structured_content,
                    "text": [c.text for c in result.content if c.type == "text"],
                })
            print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), *sys.argv[4:5]))
