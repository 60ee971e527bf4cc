"""Reference pictures: what each camera should be looking at, set by an operator in one click.

The diagnosis compares each analysed picture with its camera's reference to tell a camera
that was turned or knocked away. A reference is the analysis-size luma (one byte a pixel,
row by row: diagnosis's picture format) and the JPEG the operator saw when setting it, one
row per camera, replaced whole (the only code touching table ``camera_references``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, select

from surveillance.db.orm import Transactions
from surveillance.errors import NotFound
from surveillance.events.tables import CameraReferenceRow


class NoReference(NotFound):
    """The camera has no reference picture."""


@dataclass(frozen=True)
class Reference:
    camera_id: str
    luma: bytes  # width * height bytes, rows top to bottom
    width: int
    height: int
    jpeg: bytes
    set_by: str
    set_at: float  # unix seconds

    def __post_init__(self) -> None:
        if len(self.luma) != self.width * self.height:
            raise ValueError("a reference's luma must hold width * height bytes")


class ReferenceStore:
    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)

    def put(self, reference: Reference) -> None:
        """Set a camera's reference, replacing the one it had, in one transaction."""
        with self._transactions.begin() as session:
            session.execute(
                delete(CameraReferenceRow).where(
                    CameraReferenceRow.camera_id == reference.camera_id
                )
            )
            session.add(
                CameraReferenceRow(
                    camera_id=reference.camera_id,
                    picture=reference.luma,
                    width=reference.width,
                    height=reference.height,
                    jpeg=reference.jpeg,
                    set_by=reference.set_by,
                    set_at=reference.set_at,
                )
            )

    def get(self, camera_id: str) -> Reference | None:
        with self._transactions.begin() as session:
            row = session.get(CameraReferenceRow, camera_id)
            return None if row is None else _record(row)

    def all(self) -> list[Reference]:
        with self._transactions.begin() as session:
            rows = session.scalars(select(CameraReferenceRow)).all()
            return [_record(row) for row in rows]

    def remove(self, camera_id: str) -> bool:
        """Forget a camera's reference; False if it had none."""
        with self._transactions.begin() as session:
            removed = session.execute(
                delete(CameraReferenceRow)
                .where(CameraReferenceRow.camera_id == camera_id)
                .returning(CameraReferenceRow.camera_id)
            ).all()
        return bool(removed)


def _record(row: CameraReferenceRow) -> Reference:
    return Reference(
        camera_id=row.camera_id,
        luma=bytes(row.picture),
        width=row.width,
        height=row.height,
        jpeg=bytes(row.jpeg),
        set_by=row.set_by,
        set_at=row.set_at,
    )
