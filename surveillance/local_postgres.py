"""A throwaway PostgreSQL cluster on loopback, for the demo and the tests.

Started from Debian's ``postgresql`` package (``initdb`` + ``pg_ctl``) in a temporary
directory, on a free loopback port, trusting local connections, with fsync off (speed:
durability is not what a demo or a test shows). PostgreSQL refuses to run as root
(PostgreSQL docs, "Starting the Database Server"), so under root it runs as the
``postgres`` system user. Nothing here runs at import; :meth:`LocalPostgres.stop` removes
the directory with everything in it.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

START_TIMEOUT_S = 60
SUPERUSER = "postgres"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def pg_bin() -> Path | None:
    """The newest installed server's bin directory (Debian keeps each major version in
    ``/usr/lib/postgresql/<major>/bin``), else wherever ``pg_ctl`` is on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalPostgres:
    def __init__(self, bin_dir: Path | None = None, port: int | None = None) -> None:
        found = bin_dir or pg_bin()
        if found is None:
            raise PostgresMissing("PostgreSQL binaries are missing (install Debian's postgresql)")
        self.bin_dir = found
        self.root = Path(tempfile.mkdtemp(prefix="surveillance-pg-"))
        self.data = self.root / "data"
        self.port = port or free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", SUPERUSER, "--"]
            user = pwd.getpwnam(SUPERUSER)
            os.chown(self.root, user.pw_uid, user.pw_gid)

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as_user, *args], check=True, capture_output=True, timeout=START_TIMEOUT_S
        )

    def start(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
            SUPERUSER, "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self._pg_ctl("start")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options, "-w",
            "-t", str(START_TIMEOUT_S), "-l", str(self.root / "log"), *extra, action,
        )  # fmt: skip

    def restart(self) -> None:
        """Stop (``-m fast``: clients are disconnected, what was committed is kept) and
        start again on the same port with the same data, as a database restart in
        production looks to the nodes."""
        self._pg_ctl("restart", "-m", "fast")

    def halt(self) -> None:
        """Stop the server (``-m fast``) and keep its data: a database outage, ended by
        :meth:`resume` on the same port."""
        self._pg_ctl("stop", "-m", "fast")

    def resume(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``: nothing in it is kept) and remove
        its directory."""
        try:
            # Gone already (it shut down on a terminal's Ctrl-C, say): nothing to stop.
            if (self.data / "postmaster.pid").exists():
                self._run(
                    str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = SUPERUSER) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self, name: str | None = None) -> str:
        """Create a database (a random name unless given); its SQLAlchemy URL."""
        import psycopg  # the postgresql extra: only who starts a cluster needs it

        name = name or f"t_{secrets.token_hex(6)}"
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: letters, digits and _ only")
        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)
