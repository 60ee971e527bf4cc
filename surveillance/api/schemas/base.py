"""The two base classes every body derives from, and the size a request body may have."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints

# What a request body may weigh unless its route says otherwise (FastAPI's ``max_body_size``,
# app-wide in ``create_app``, per route on the decorator). The largest body a route takes
# today is a case comment: 20,000 characters, up to 12 bytes each as JSON escapes (a
# surrogate pair), so 240 KB. A larger body is refused with 413 as soon as its
# Content-Length says so, or when the bytes read pass the limit; it is never read whole.
DEFAULT_BODY_BYTES = 256 * 1024


class In(BaseModel):
    """A request body: unknown fields are refused, and so are NaN and Infinity (Python's
    ``json`` module accepts them, but they are not JSON and no field here means them)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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


# Ids in paths and queries are ASCII digits only. Python's int() and str.isdigit() also take
# other scripts' digits (Arabic-Indic "١٢" is 12), and pydantic takes "+12", " 12", "1_2"
# and "12.0": several spellings of one id, which a log or a cache keyed by the text would
# tell apart. Patterns are written [0-9], never \d, which is Unicode-wide in pydantic's regex.
MAX_ID_DIGITS = 18  # fits a signed 64-bit column


def _ascii_digits(value: object) -> object:
    if isinstance(value, str) and not (
        value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS
    ):
        raise ValueError(f"must be 1 to {MAX_ID_DIGITS} ASCII digits")
    return value


NumericId = Annotated[int, BeforeValidator(_ascii_digits), Ge(1), Le(10**MAX_ID_DIGITS - 1)]
"""A database id, in a path or a query: ASCII digits, nothing else."""

ItemRef = Annotated[str, StringConstraints(pattern=r"^(?:[0-9]{1,18}|[0-9a-f]{64})$")]
"""An evidence item in a path: its id (ASCII digits) or its SHA-256 (64 lower-case hex)."""
