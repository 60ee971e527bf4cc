"""``/api/live/mse`` relayed from the camera's owner, for a page that cannot reach it.

A wall page plays a camera another node holds straight from that node (the plan's
``mse_url``, with a ticket). When the browser cannot open that socket (the page came through
a load balancer or a name the owner's URL is not reachable by, a TLS page and a plain-http
node) it asks its own node instead, with its own sign-in, and that node relays: it opens
the same socket on the owner and pumps the messages both ways.

The rules of api/forward.py hold here too:

- only to the owner's URL from the cluster table (``Ownership.owner_url``), never a URL
  from the request, and never twice (the owner's socket carries the forwarded header; a
  node that gets one for a camera it does not hold refuses it instead of relaying again);
- only the user's own credentials travel (cookie or bearer token): the owner
  authenticates them against the shared database and applies its access rules, and ends
  the viewer when the sign-in ends; no ticket is involved. No Origin is sent: this node
  checked the page's; the owner sees a request of no page;
- buffers are bounded: at most RELAY_MAX_QUEUE messages of RELAY_MAX_MESSAGE_BYTES wait
  from the owner (then reading stops and TCP pushes back; the owner drops frames for a
  slow viewer as it does for any), and each message is sent on before the next is read.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, cast
from urllib.parse import urlencode

from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from surveillance.api.forward import FORWARDED_HEADER, origin_of

if TYPE_CHECKING:  # the node is the app's state: no import at run time
    from surveillance.api.node import Node

RELAY_OPEN_TIMEOUT_S = 5.0
RELAY_MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # one fMP4 fragment: a 4K key frame fits
RELAY_MAX_QUEUE = 4  # messages read from the owner and not yet sent on
RELAYED_HEADERS = ("cookie", "authorization", "user-agent")
WS_INTERNAL_ERROR = 1011
WS_TRY_AGAIN_LATER = 1013
# Close codes an endpoint may not send itself (RFC 6455 7.4.1): said as "internal error".
UNSENDABLE_CODES = frozenset({1005, 1006, 1015})


def relay_target(websocket: WebSocket, camera: str, stream: str) -> tuple[str, str] | None:
    """(node id, owner's socket URL) when another node holds ``camera``; None when this
    node serves it (it holds it, cluster mode is off, or nobody holds it now)."""
    node = cast("Node", websocket.app.state.node)
    ownership = node.ownership
    if ownership is None:
        return None
    owner_url = ownership.owner_url(camera)
    if owner_url is None:
        return None
    origin = origin_of(owner_url)
    node_id = ownership.owner(camera) or "?"
    if origin is None:
        return node_id, ""
    query = urlencode({"camera": camera, "stream": stream})
    return node_id, f"{origin.replace('http', 'ws', 1)}/api/live/mse?{query}"


async def relay(websocket: WebSocket, node_id: str, target: str) -> None:
    """Accepts the page's socket and relays the owner's to it until either side ends."""
    node = cast("Node", websocket.app.state.node)
    await websocket.accept()
    if FORWARDED_HEADER in websocket.headers or not target:
        # A node thought we hold it; we think another does: the camera is moving.
        why = "is moving between nodes; try again" if target else "has an owner without URL"
        await _refuse(websocket, f"this camera {why}", WS_TRY_AGAIN_LATER)
        return
    headers = {name: value for name in RELAYED_HEADERS if (value := websocket.headers.get(name))}
    headers[FORWARDED_HEADER] = node.config.cluster.node_id or ""
    try:
        upstream = await connect(
            target,
            additional_headers=headers,
            user_agent_header=None,
            compression=None,  # video does not deflate; the page's side decides its own
            proxy=None,  # no proxy from the environment between two nodes
            open_timeout=RELAY_OPEN_TIMEOUT_S,
            max_size=RELAY_MAX_MESSAGE_BYTES,
            max_queue=RELAY_MAX_QUEUE,
        )
    except InvalidStatus as refused:
        status = refused.response.status_code
        await _refuse(websocket, f"node {node_id!r}, which holds this camera, refused the "
                                 f"viewer (HTTP {status})", WS_INTERNAL_ERROR)  # fmt: skip
        return
    except (OSError, TimeoutError, WebSocketException) as error:
        node.forwarder.warn(f"relay:{node_id}", "node %s unreachable for an fMP4 relay: %s",
                            node_id, type(error).__name__)  # fmt: skip
        await _refuse(websocket, f"node {node_id!r}, which holds this camera, did not answer",
                      WS_INTERNAL_ERROR)  # fmt: skip
        return
    try:
        await _pump(websocket, upstream)
    finally:
        await upstream.close()


async def _pump(websocket: WebSocket, upstream: ClientConnection) -> None:
    down = asyncio.create_task(_owner_to_page(websocket, upstream))
    up = asyncio.create_task(_page_to_owner(websocket, upstream))
    try:
        await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (down, up):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if down.done():  # the owner ended it: its code and reason (the viewer's sign-in ended...)
        code = upstream.close_code or WS_INTERNAL_ERROR
        reason = upstream.close_reason or ""
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(
                code=WS_INTERNAL_ERROR if code in UNSENDABLE_CODES else code, reason=reason
            )


async def _owner_to_page(websocket: WebSocket, upstream: ClientConnection) -> None:
    with contextlib.suppress(WebSocketException):  # the owner closed: the caller says so
        async for message in upstream:
            if isinstance(message, bytes):
                await websocket.send_bytes(message)
            else:
                await websocket.send_text(message)


async def _page_to_owner(websocket: WebSocket, upstream: ClientConnection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        text = message.get("text")
        if data is not None:
            await upstream.send(data)
        elif text is not None:
            await upstream.send(text)


async def _refuse(websocket: WebSocket, detail: str, code: int) -> None:
    """As the route tells a failure before the first segment: a JSON error, then close."""
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.send_json({"type": "error", "detail": detail})
        await websocket.close(code=code)
