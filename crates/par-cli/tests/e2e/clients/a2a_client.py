"""Drives PAR's A2A endpoint with the official A2A Python SDK (a2a-sdk 1.3.0): resolves
the agent card, keeps only the interface of the wanted protocol version (1.0 or 0.3),
then sends a message (`send`: blocking; `file`: blocking, the payload
`{"filename", "media_type", "content"}` sent as a file part (raw bytes) beside a data
part `{"note": "with a file"}`; `stream`: streamed events; `cancel`: streamed,
cancelling the task after its first event) and fetches the task at the end. Prints one
JSON object: the card, the events (as 1.0 ProtoJSON dicts; the SDK converts 0.3) and
the task.

usage: a2a_client.py AGENT_URL VERSION MODE PAYLOAD_JSON"""

import asyncio
import base64
import json
import sys

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.client.card_resolver import A2ACardResolver
from a2a.types import CancelTaskRequest, GetTaskRequest, Message, SendMessageRequest
from google.protobuf.json_format import MessageToDict, ParseDict


def message(payload, mode):
    if mode == "file":
        raw = base64.b64encode(payload["content"].encode()).decode()
        file = {"raw": raw, "filename": payload["filename"], "mediaType": payload["media_type"]}
        parts = [{"data": {"note": "with a file"}}, file]
    elif isinstance(payload, str):
        parts = [{"text": payload}]
    else:
        parts = [{"data": payload}]
    return ParseDict({"role": "ROLE_USER", "messageId": "m-1", "parts": parts}, Message())


async def main(url, version, mode, payload):
    async with httpx.AsyncClient(timeout=60) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        card_dict = MessageToDict(card)
        keep = [i for i in card.supported_interfaces if i.protocol_version == version]
        del card.supported_interfaces[:]
        card.supported_interfaces.extend(keep)
        config = ClientConfig(streaming=mode not in ("send", "file"), httpx_client=http)
        client = ClientFactory(config).create(card)
        events, task_id = [], None
        async for event in client.send_message(SendMessageRequest(message=message(payload, mode))):
            events.append(MessageToDict(event))
            if task_id is None and event.HasField("task"):
                task_id = event.task.id
                if mode == "cancel":
                    cancelled = await client.cancel_task(CancelTaskRequest(id=task_id))
                    events.append({"cancelled": MessageToDict(cancelled)})
        task = await client.get_task(GetTaskRequest(id=task_id))
        print(json.dumps({"card": card_dict, "events": events, "task": MessageToDict(task)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])))
