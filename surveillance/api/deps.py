"""Request dependencies: typed access to the node's services (no globals).

Who is asking, and whether they may, is decided by the route's guard (``guards.py``)."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from surveillance.api.node import Node


def get_node(request: Request) -> Node:
    return cast(Node, request.app.state.node)


NodeDep = Annotated[Node, Depends(get_node)]
