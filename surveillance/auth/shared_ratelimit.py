"""Sign-in throttling across the nodes sharing one PostgreSQL database (cluster mode).

Behind a load balancer every node sees the same client, so a limit counted in each node's
memory gives an attacker one allowance per node. Here an attempt is a row of
``sign_in_attempts`` (migration 0013) stamped with the database's clock, and the decision
and the count are one transaction under a per-address advisory lock (PostgreSQL docs,
"Advisory Locks": ``pg_advisory_xact_lock`` is released at the transaction's end), so two
nodes' parallel attempts from one address cannot both pass the check before either is
counted. Same rules as :class:`~.ratelimit.SignInLimiter`: refused attempts are not
counted, and a sign-in that succeeds takes back one attempt of its address, not all.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from surveillance.auth.ratelimit import AttemptLimiter, SignInLimiter

# The first of the two advisory-lock keys, naming this use (the two-key space does not
# overlap the one-key space of db/advisory.py); the second is the address's hash.
SIGN_IN_LOCK_SPACE = 0x5349_474E  # "SIGN"
CLIENT_LENGTH = 64  # the column's width; longer addresses (none are) are cut, not refused

_LOCK = text("SELECT pg_advisory_xact_lock(:space, hashtext(:client))")
# Rows out of the window, every address's: they count for nothing any more. SKIP LOCKED:
# rows another node's transaction is removing right now are left to it, so two prunes
# never wait on (or deadlock with) each other.
_PRUNE = text(
    "DELETE FROM sign_in_attempts WHERE id IN (SELECT id FROM sign_in_attempts"
    " WHERE at <= now() - make_interval(secs => :window) FOR UPDATE SKIP LOCKED)"
)
_COUNT = text(
    "SELECT count(*), extract(epoch FROM min(at) + make_interval(secs => :window) - now())"
    " FROM sign_in_attempts WHERE client = :client"
)
_ADD = text("INSERT INTO sign_in_attempts (client, at) VALUES (:client, now())")
_TAKE_BACK = text(
    "DELETE FROM sign_in_attempts WHERE id ="
    " (SELECT max(id) FROM sign_in_attempts WHERE client = :client)"
)


class SharedSignInLimiter:
    def __init__(self, engine: Engine, max_failures: int = 5, window_s: float = 300.0) -> None:
        self._engine = engine
        self._max = max_failures
        self._window = window_s

    def attempt(self, client: str) -> float:
        """Counts an attempt and returns 0 when this client may check a password now;
        otherwise counts nothing and returns the seconds it must wait."""
        client = client[:CLIENT_LENGTH]
        with self._engine.begin() as connection:
            connection.execute(_LOCK, {"space": SIGN_IN_LOCK_SPACE, "client": client})
            wait = self._wait(connection, client)
            if wait > 0:
                return wait
            connection.execute(_ADD, {"client": client})
            return 0.0

    def retry_after(self, client: str) -> float:
        """Seconds this client must wait before its next attempt; 0 when it may try now."""
        with self._engine.begin() as connection:
            return self._wait(connection, client[:CLIENT_LENGTH])

    def succeeded(self, client: str) -> None:
        """The password was right: the attempt just counted does not count."""
        client = client[:CLIENT_LENGTH]
        with self._engine.begin() as connection:
            connection.execute(_LOCK, {"space": SIGN_IN_LOCK_SPACE, "client": client})
            connection.execute(_TAKE_BACK, {"client": client})

    def _wait(self, connection: Connection, client: str) -> float:
        connection.execute(_PRUNE, {"window": self._window})
        count, left = connection.execute(_COUNT, {"client": client, "window": self._window}).one()
        if count < self._max:
            return 0.0
        return max(0.0, float(left))


def build_sign_in_limiter(
    engine: Engine, max_failures: int, window_s: float, *, shared: bool
) -> AttemptLimiter:
    """The database's limiter for a node of a cluster (``shared``), else this node's own."""
    if shared:
        return SharedSignInLimiter(engine, max_failures, window_s)
    return SignInLimiter(max_failures, window_s)
