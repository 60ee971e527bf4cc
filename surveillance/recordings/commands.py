"""The ``surveillance verify --recordings`` command.

One line per problem naming the camera stream, the segment (id, file, start) and what is
wrong, a summary line, exit status 1 if anything failed (2 for unusable input), like
``surveillance verify`` for evidence.
"""

from __future__ import annotations

import sys

from surveillance.config.models import AppConfig
from surveillance.db import (
    SQLITE_FILE,
    StoreOutdated,
    check_current,
    create_db_engine,
    database_url,
)
from surveillance.recordings.store import RecordingStore
from surveillance.recordings.verify import verify_recordings

# Said on every run: what the chains cannot show (see recordings/verify.py).
CHAIN_LIMIT = (
    "a database writer who recomputes every link after a change, and the chain's anchor, "
    "or who deletes a whole camera stream's chain with its anchor, leaves chains that "
    "check: compare with the audit log's recordings.delete entries"
)


def verify_recordings_command(config: AppConfig) -> int:
    sqlite_file = config.server.data_dir / SQLITE_FILE
    if config.database.url is None and not sqlite_file.is_file():
        print(f"FAILED: no database at {sqlite_file}", file=sys.stderr)
        return 2
    root = config.recording_root()
    engine = create_db_engine(database_url(config))
    try:
        check_current(engine)
        report = verify_recordings(RecordingStore(engine), root)
    except StoreOutdated as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    for problem in report.problems:
        print(f"FAILED: {problem}")
    summary = (
        f"{report.chains} camera streams, {report.segments} segments of {report.bytes} bytes "
        f"in {root}; {report.removed_segments} removed by retention ({report.holes} behind "
        f"held footage)"
    )
    if report.open_segments:
        print(f"Note: {report.open_segments} segment(s) being written are not checked yet")
    if report.set_aside:
        print(
            f"Note: {len(report.set_aside)} file(s) the node set aside at a start, in no index "
            "row (retention was removing them when the node stopped, or their rows were "
            "deleted):"
        )
        for path in report.set_aside:
            print(f"  {path}")
    print(f"Note: {CHAIN_LIMIT}")
    if report.ok:
        print(
            f"OK: {summary}: every segment file matches its size and SHA-256, every chain "
            "is complete from its head to its tail"
        )
        return 0
    print(f"VERIFICATION FAILED: {len(report.problems)} problem(s) in {summary}")
    return 1
