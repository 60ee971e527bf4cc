"""The app factory: nothing starts at import; the lifespan starts and stops the node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from surveillance import __version__
from surveillance.api.node import Node
from surveillance.api.routes import cameras, live, metrics, mosaic, platforms, wall
from surveillance.api.routes import cases as case_routes
from surveillance.api.routes import evidence as evidence_routes
from surveillance.config.models import AppConfig
from surveillance.redact import Redactor
from surveillance.web import pages


def create_app(config: AppConfig, *, redactor: Redactor | None = None) -> FastAPI:
    node = Node.build(config, redactor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await node.start()
        try:
            yield
        finally:
            await node.stop()

    app = FastAPI(
        title="surveillance",
        version=__version__,
        description="Command-room video integration: cameras, health, live snapshots.",
        lifespan=lifespan,
    )
    app.state.node = node
    app.include_router(cameras.router)
    app.include_router(platforms.router)
    app.include_router(metrics.router)
    app.include_router(live.router)
    app.include_router(case_routes.router)
    app.include_router(evidence_routes.router)
    app.include_router(wall.router)
    app.include_router(mosaic.router)
    pages.install(app)
    return app
