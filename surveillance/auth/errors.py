"""Why a user or token request cannot be done (the message says it to the operator)."""

from __future__ import annotations


class AuthError(ValueError):
    """A user or token request that cannot be done; the message says why."""


class UnknownUser(AuthError):
    pass


class UserExists(AuthError):
    pass
