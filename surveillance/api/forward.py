"""A camera-bound request answered by the node that holds the camera (cluster mode).

Only the camera's owner has its live ring, its decoder and its PTZ channel. A node that
gets a request for a camera another node holds passes it on, once, to that node's URL from
the cluster table (``Ownership.owner_url``, never a URL from the request), and streams the
answer back. The forwarded request keeps the user's own credentials (cookie or bearer
token, and the CSRF token): the owner authenticates it against the shared database and
applies its own access rules, so forwarding grants nothing the user did not have.

Rules that keep this safe:

- Forwarded at most once: the forwarded request carries ``X-Surveillance-Forwarded: <this
  node>``; a node that receives one for a camera it does not hold answers 503 with
  ``Retry-After`` ("camera moving between nodes") instead of forwarding again, so two
  nodes with different views of the leases cannot bounce a request between them.
- Only the request headers the owner needs are sent (a whitelist), only content headers
  come back: hop-by-hop headers (RFC 9110 7.6.1) and anything else stay behind.
- The body was capped by the route before it was read (the app's ``max_body_size``), and
  is capped again here; the answer is streamed (clips are large), never read whole.
- An owner that does not answer in time, or cannot be reached, is a 503 that names its
  node id (not its URL, which may carry nothing secret but is not the user's business).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

import httpx
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection

from surveillance.api.schemas.base import DEFAULT_BODY_BYTES
from surveillance.errors import NotFound, SurveillanceError

if TYPE_CHECKING:  # the node holds this module's Forwarder: no import at run time
    from surveillance.api.node import Node
    from surveillance.services.camera_ownership import Ownership

log = logging.getLogger(__name__)

FORWARDED_HEADER = "x-surveillance-forwarded"
FORWARD_TIMEOUT_S = 30.0  # a clip waits for footage still to come: up to its post_s
CONNECT_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 100  # to all owners together; more wait for one (the pool's timeout)
MAX_KEEPALIVE = 20
MAX_FORWARD_BODY_BYTES = DEFAULT_BODY_BYTES  # no camera-bound route takes more
RETRY_AFTER_S = 2
MAX_ANSWER_BYTES = 1024 * 1024  # a JSON answer read here (one part of a larger request)
LOG_EVERY_S = 60.0
# A moment this recent may lie in the segment the owner is still writing (only its
# recorder knows that segment's fragments) or in its live ring: asked of the owner. Older
# footage is in the shared recordings, which any node reads.
RECENT_MARGIN_S = 15.0
# What the owner needs of the request: who is asking (cookie, bearer token, CSRF token),
# what is sent and wanted. Origin is not sent: this node checked it; the owner sees a
# same-node request (its own Host), as it is one by then.
REQUEST_HEADERS = (
    "cookie",
    "authorization",
    "x-csrf-token",
    "content-type",
    "accept",
    "range",
    "user-agent",
)
# What comes back: the content and what describes it. Hop-by-hop headers, cookies and the
# owner's security headers (this node adds its own) stay behind.
RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-range",
        "content-disposition",
        "accept-ranges",
        "cache-control",
        "etag",
        "retry-after",
        "www-authenticate",
    }
)
# The owner's own headers that say what it sent (X-Captured-At, X-First-At, ...).
RESPONSE_PREFIX = "x-"
NOT_PASSED_BACK = frozenset({FORWARDED_HEADER, "x-content-type-options", "x-frame-options"})


class CameraMoving(SurveillanceError):
    """A forwarded request reached a node that does not hold the camera either."""

    status_code = 503
    retry_after_s = RETRY_AFTER_S

    def __init__(self, camera_id: str) -> None:
        super().__init__(f"camera {camera_id!r} is moving between nodes; try again")


class NotForwardedTwice(SurveillanceError):
    status_code = 503
    retry_after_s = RETRY_AFTER_S

    def __init__(self) -> None:
        super().__init__("a request forwarded once is not forwarded again; try again")


class OwnerUnreachable(SurveillanceError):
    """The node holding the camera did not answer."""

    status_code = 503
    retry_after_s = RETRY_AFTER_S

    def __init__(self, node_id: str, why: str) -> None:
        super().__init__(f"node {node_id!r}, which holds this camera, did not answer ({why})")


class ForwardTooLarge(SurveillanceError):
    status_code = 413

    def __init__(self) -> None:
        super().__init__(f"request body over {MAX_FORWARD_BODY_BYTES} bytes")


def _node(connection: HTTPConnection) -> Node:
    return cast("Node", connection.app.state.node)


def _ownership(request: Request) -> Ownership | None:
    return _node(request).ownership  # None when cluster mode is off: every camera is ours


def _node_id(request: Request) -> str:
    return _node(request).config.cluster.node_id or ""


def was_forwarded(request: Request) -> bool:
    return FORWARDED_HEADER in request.headers


def node_origins(connection: HTTPConnection) -> frozenset[str]:
    """The origins (scheme://host:port) of the live nodes of the cluster table."""
    return cluster_origins(_node(connection))


def cluster_origins(node: Node | None) -> frozenset[str]:
    membership = node.membership if node is not None else None
    if membership is None:
        return frozenset()
    return frozenset(o for o in (origin_of(n.url) for n in membership.live_nodes()) if o)


def socket_origins(node: Node | None) -> frozenset[str]:
    """The live nodes' origins as WebSocket origins (ws://, wss://): where a page of this
    node may open an fMP4 socket (the pages' CSP ``connect-src``)."""
    return frozenset(o.replace("http", "ws", 1) for o in cluster_origins(node))


def origin_of(url: str) -> str | None:
    """``http://host:port`` of a node's URL; None for one that is not plain http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


class Forwarder:
    """One HTTP client for the node's forwarded requests (a pool of connections to the
    other nodes), made at the first forward, closed with the node."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._logged: dict[str, float] = {}

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(FORWARD_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                limits=httpx.Limits(
                    max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE
                ),
                follow_redirects=False,  # a redirect goes back to the browser as it is
                verify=True,
                trust_env=False,  # no proxy from the environment between two nodes
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def warn(self, kind: str, message: str, *args: object) -> None:
        """Logs at most once per LOG_EVERY_S per kind: refusals may come in floods."""
        now = time.monotonic()
        if now - self._logged.get(kind, float("-inf")) < LOG_EVERY_S:
            return
        self._logged[kind] = now
        log.warning(message, *args)

    async def send(
        self,
        request: Request,
        node_id: str,
        owner_url: str,
        *,
        path: str | None = None,
        body: bytes | None = None,
        wait_s: float = 0.0,
    ) -> Response:
        """``request`` sent to the node at ``owner_url`` (same method, path and query unless
        ``path`` is given; its body unless ``body`` is), the answer streamed back. ``wait_s``:
        how much longer than FORWARD_TIMEOUT_S the owner may take (a clip that waits for
        footage still to come)."""
        origin = origin_of(owner_url)
        if origin is None:
            self.warn("bad-url", "node %s has a URL that is not http(s): not forwarded", node_id)
            raise OwnerUnreachable(node_id, "its URL in the cluster table is not http(s)")
        content = await request.body() if body is None else body
        if len(content) > MAX_FORWARD_BODY_BYTES:
            raise ForwardTooLarge()
        target = origin + (path or request.url.path)
        if path is None and request.url.query:
            target += "?" + request.url.query
        headers = {name: value for name in REQUEST_HEADERS if (value := request.headers.get(name))}
        headers[FORWARDED_HEADER] = _node_id(request)
        headers["accept-encoding"] = "identity"  # streamed back as it comes, not recoded
        client = self._http()
        timeout = httpx.Timeout(FORWARD_TIMEOUT_S + wait_s, connect=CONNECT_TIMEOUT_S)
        sent = client.build_request(
            request.method, target, headers=headers, content=content, timeout=timeout
        )
        try:
            answer = await client.send(sent, stream=True)
        except httpx.TimeoutException:
            self.warn(f"timeout:{node_id}", "node %s did not answer a forwarded request", node_id)
            raise OwnerUnreachable(node_id, "timed out") from None
        except httpx.HTTPError as exc:
            self.warn(f"down:{node_id}", "node %s unreachable: %s", node_id, type(exc).__name__)
            raise OwnerUnreachable(node_id, "unreachable") from None
        return StreamingResponse(
            _body(answer),
            status_code=answer.status_code,
            headers=_passed_back(answer.headers),
            background=BackgroundTask(answer.aclose),
        )

    async def exchange(
        self,
        request: Request,
        node_id: str,
        owner_url: str,
        path: str,
        body: bytes,
        wait_s: float = 0.0,
    ) -> tuple[int, bytes]:
        """A small JSON request of this one's user to another node (one part of a request
        that spans cameras of several nodes): the status and at most MAX_ANSWER_BYTES."""
        answer = await self.send(request, node_id, owner_url, path=path, body=body, wait_s=wait_s)
        assert isinstance(answer, StreamingResponse)
        data = bytearray()
        async for chunk in answer.body_iterator:
            data += chunk if isinstance(chunk, bytes) else str(chunk).encode()
            if len(data) > MAX_ANSWER_BYTES:
                break
        if answer.background is not None:
            await answer.background()
        if len(data) > MAX_ANSWER_BYTES:
            raise OwnerUnreachable(node_id, "its answer was too long")
        return answer.status_code, bytes(data)


def _passed_back(headers: httpx.Headers) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in NOT_PASSED_BACK:
            continue
        if lower in RESPONSE_HEADERS or lower.startswith(RESPONSE_PREFIX):
            kept[lower] = value
    return kept


async def _body(answer: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        # The owner went away mid-answer: the client sees a short body (its length said
        # more), which is what happened.
        return
    finally:
        await answer.aclose()


def forwarder_of(request: Request) -> Forwarder:
    return _node(request).forwarder


async def to_owner(request: Request, camera_id: str, wait_s: float = 0.0) -> Response | None:
    """The owner's answer when another node holds ``camera_id``; None when this node
    should answer (it holds the camera, cluster mode is off, or nobody holds it now: the
    local route then says why the camera has no picture). A request forwarded here already
    is never forwarded again: 503 "moving" when we do not hold the camera either."""
    owner = owner_elsewhere(request, camera_id)
    if owner is None:
        return None
    return await forwarder_of(request).send(request, *owner, wait_s=wait_s)


def owner_elsewhere(request: Request, camera_id: str) -> tuple[str, str] | None:
    """(node id, URL) of the node holding ``camera_id`` when it is another one."""
    ownership = _ownership(request)
    if ownership is None:
        return None
    owner_url = ownership.owner_url(camera_id)
    if owner_url is None:
        if was_forwarded(request) and not ownership.holds(camera_id):
            raise CameraMoving(camera_id)
        return None
    if was_forwarded(request):
        # Never twice: the node that sent it thinks we hold it; we think someone else does.
        forwarder_of(request).warn(
            "twice", "forwarded request for camera %s another node holds: refused", camera_id
        )
        raise CameraMoving(camera_id)
    return ownership.owner(camera_id) or "?", owner_url


async def to_node(request: Request, node_id: str) -> Response:
    """``request`` forwarded to the node ``node_id`` of the cluster table (a viewer that
    lives there). 404 when that node is not in the table."""
    membership = _node(request).membership
    url = membership.node_url(node_id) if membership is not None else None
    if url is None:
        raise NotFound(f"no node {node_id!r} in this cluster")
    if was_forwarded(request):
        raise NotForwardedTwice()
    return await forwarder_of(request).send(request, node_id, url)


def owner_only(request: Request, moment: float | None, reach_s: float = 0.0) -> bool:
    """Whether footage at ``moment`` (None: live) needs the camera's owner: live, within
    ``reach_s`` (the ring) or within the open segment's length of now."""
    if moment is None:
        return True
    recording = _node(request).config.recording
    recent_s = max(reach_s, float(recording.segment_s) + RECENT_MARGIN_S)
    return bool(moment > time.time() - recent_s)
