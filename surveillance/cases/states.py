"""The case workflow: states, the transitions users need, and what each state allows.

The grid-management workflow is report -> dispatch -> handle -> feedback -> track ->
close/archive. "Track" is not a state of its own: it is the feedback step's decision, to
close the case or send it back to handling.

Evidence may be attached while a case is open (reported up to feedback). A closed case is
read-only for evidence until someone reopens it, so what was exported or reviewed at
closing is what the case holds; an archived case is read-only for good, comments included.
"""

from __future__ import annotations

from enum import StrEnum


class CaseState(StrEnum):
    REPORTED = "reported"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    FEEDBACK = "feedback"
    CLOSED = "closed"
    ARCHIVED = "archived"


S = CaseState

TRANSITIONS: dict[CaseState, tuple[CaseState, ...]] = {
    # A report may be dismissed (duplicate, not actionable) without being dispatched.
    S.REPORTED: (S.DISPATCHED, S.CLOSED),
    # Dispatch can be withdrawn (wrong team); the assignee starts handling.
    S.DISPATCHED: (S.IN_PROGRESS, S.REPORTED),
    S.IN_PROGRESS: (S.FEEDBACK,),
    # Tracking the feedback: accept and close, or send back for more handling.
    S.FEEDBACK: (S.CLOSED, S.IN_PROGRESS),
    # Reopen, or archive for good.
    S.CLOSED: (S.IN_PROGRESS, S.ARCHIVED),
    S.ARCHIVED: (),
}

OPEN_STATES = (S.REPORTED, S.DISPATCHED, S.IN_PROGRESS, S.FEEDBACK)


def transition_error(current: CaseState, target: CaseState) -> str | None:
    """Why ``current -> target`` is not allowed, or None if it is."""
    if target in TRANSITIONS[current]:
        return None
    if current is S.ARCHIVED:
        return "an archived case cannot change state"
    allowed = ", ".join(TRANSITIONS[current]) or "none"
    return f"cannot move from {current} to {target}; allowed: {allowed}"


def attach_error(state: CaseState) -> str | None:
    """Why evidence cannot be attached in ``state``, or None if it can."""
    if state is S.CLOSED:
        return "a closed case takes no new evidence; reopen it (closed -> in_progress) first"
    if state is S.ARCHIVED:
        return "an archived case is read-only"
    return None


def edit_error(state: CaseState) -> str | None:
    """Why the case's fields or timeline cannot change in ``state``, or None."""
    return "an archived case is read-only" if state is S.ARCHIVED else None
