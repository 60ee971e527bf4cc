"""The two base classes every body derives from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict


class In(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """A response body, built from a record's attributes."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)


def _utc(value: object) -> object:
    """Unix seconds (how the auth and audit tables keep time) as an aware UTC datetime."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return value


UtcTime = Annotated[datetime, BeforeValidator(_utc)]
"""A moment, answered as ISO 8601 in UTC whether the record holds a datetime or Unix time."""
