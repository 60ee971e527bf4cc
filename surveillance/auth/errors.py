"""Why a user, password or token request cannot be done (the message says it to the operator).

Each carries its HTTP status like every :class:`~surveillance.errors.SurveillanceError`, so
the API maps them with everything else; the commands print the message and exit 2.
"""

from __future__ import annotations

from surveillance.errors import InvalidRequest


class AuthError(InvalidRequest):
    """A user or token request that cannot be done; the message says why."""


class UnknownUser(AuthError):
    status_code = 404


class UserExists(AuthError):
    status_code = 409


class WeakPassword(AuthError):
    """A new password outside the allowed length."""
