"""Request dependencies: typed access to the node's services (no globals)."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from surveillance.api.node import Node


def get_node(request: Request) -> Node:
    return cast(Node, request.app.state.node)


NodeDep = Annotated[Node, Depends(get_node)]


def current_user(request: Request) -> str:
    """Who is acting. Until sign-in exists (issue 5) it is the ``X-User`` header, so that
    layouts and evidence already record a name; this is the one place to replace."""
    name = request.headers.get("x-user", "").strip()
    return name[:128] if name else "anonymous"


UserDep = Annotated[str, Depends(current_user)]
