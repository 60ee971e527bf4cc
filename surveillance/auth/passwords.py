"""Password hashing: argon2id with the argon2-cffi defaults (RFC 9106's second
recommended option, 64 MiB and 3 passes), parameters stored in each hash so they can grow;
and the fast hash that session and token secrets are stored under."""

from __future__ import annotations

import hashlib
import threading
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from surveillance.auth.errors import WeakPassword

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; a cap keeps one request cheap

_hasher = PasswordHasher()

# Argon2 hashes and checks running at once, in this process. Each takes the hasher's
# memory_cost (64 MiB) for its duration, so this many take at most 128 MiB; more would only
# share the same two cores (a check computes for its whole duration). Without a
# bound, 60 concurrent sign-ins ran 40 at once (the worker threads) and took 1.6 GB.
MAX_CONCURRENT_ARGON2 = 2
_argon2_slots = threading.BoundedSemaphore(MAX_CONCURRENT_ARGON2)


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a
    wrong password and sign-in timing does not tell which names exist."""
    with _argon2_slots:
        return _hasher.hash("not a password of anyone's")


def check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    with _argon2_slots:
        return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    against = stored_hash or _dummy_hash()
    try:
        with _argon2_slots:
            matches = _hasher.verify(against, password)
        return matches and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def secret_hash(secret: str) -> str:
    """How a session or token secret is stored. Those secrets are 256 random bits, so a
    fast hash is enough (there is no guessing to slow down), unlike a password's."""
    return hashlib.sha256(secret.encode()).hexdigest()
