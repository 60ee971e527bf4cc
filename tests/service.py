"""The real app under uvicorn in a thread, for tests that need a real HTTP server (browsers,
endless streams, WebSockets over the network)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.cli import WS_PER_MESSAGE_DEFLATE
from surveillance.config.models import AppConfig

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServiceProcess:
    """The real app under uvicorn in a thread: stop() and start() again is a service restart
    (a new node, a new database connection, the same data directory)."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._app: FastAPI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.config.server.tls_certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def node(self) -> Node:
        """The running node (a new one after each restart), e.g. to add users to its
        database the way `surveillance user add` does."""
        assert self._app is not None, "the service is not running"
        node: Node = self._app.state.node
        return node

    def on_loop(self, call: Callable[[], T], timeout_s: float = 30) -> T:
        """``call()`` run on the node's event loop (where the catalog changes, say), its
        result or its exception here."""
        assert self._loop is not None, "the service is not running"

        async def run() -> T:
            return call()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def start(self) -> None:
        app = create_app(self.config)
        self._app = app
        lifespan = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def noting_the_loop(app: FastAPI) -> AsyncIterator[Any]:
            self._loop = asyncio.get_running_loop()
            async with lifespan(app) as state:
                yield state

        app.router.lifespan_context = noting_the_loop
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                # As `surveillance serve` does with the same options.
                ssl_certfile=self.config.server.tls_certfile,
                ssl_keyfile=self.config.server.tls_keyfile,
                ws_per_message_deflate=WS_PER_MESSAGE_DEFLATE,
            )
        )
        self._server = server
        self._thread = threading.Thread(target=server.run, name="test-service", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(15)
        self._server = None
        self._app = None
        self._loop = None

    def restart(self) -> None:
        self.stop()
        self.start()
