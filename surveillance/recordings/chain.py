"""The hash chain of one camera stream's segments: what each link covers, exactly.

Every closed segment of a (camera, stream) gets the next ``chain_seq`` of that chain and
``link = SHA-256(JSON [version, prev_link, id, camera, stream, chain_seq, path, start_at,
end_at, bytes, sha256])``, where ``prev_link`` is the link of the segment closed before it
(the chain's genesis link for the first). JSON gives one unambiguous encoding: strings are
quoted and escaped, and Python writes a float as the shortest text that reads back as the
same double (what both SQLite REAL and PostgreSQL double precision store), so a verifier
recomputes the same bytes from the row.

Removing a segment keeps the chain checkable: retention at the chain's head moves the
anchor's ``head_link``/``head_seq`` past it; a segment removed behind a held one leaves a
row in ``recording_removals`` with the fields of its link (see :mod:`.tables`).
"""

from __future__ import annotations

import hashlib
import json

LINK_VERSION = 1


def _digest(values: list[object]) -> str:
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def genesis_link(camera_id: str, stream: str) -> str:
    """The ``prev_link`` of a chain's first segment."""
    return _digest([LINK_VERSION, "genesis", camera_id, stream])


def segment_link(
    prev_link: str,
    segment_id: int,
    camera_id: str,
    stream: str,
    chain_seq: int,
    path: str,
    start_at: float,
    end_at: float,
    size: int,
    sha256: str,
) -> str:
    return _digest(
        [
            LINK_VERSION, prev_link, segment_id, camera_id, stream, chain_seq, path,
            float(start_at), float(end_at), size, sha256,
        ]
    )  # fmt: skip
