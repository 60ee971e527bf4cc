"""MSE tickets (services/mse_tickets.py): single use, short-lived, bound to one camera and
stream, the credential behind them never in their repr."""

from __future__ import annotations

from surveillance.services.mse_tickets import MAX_TICKETS, TICKET_TTL_S, Credential, MseTickets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


SECRET = Credential("session", "the-session-secret")


def test_a_ticket_is_good_once_for_its_camera_and_stream_only() -> None:
    clock = Clock()
    tickets = MseTickets(clock)
    ticket = tickets.mint(7, "cam00", "main", SECRET)
    assert len(ticket) >= 40 and "the-session-secret" not in ticket
    assert tickets.take(ticket, "cam01", "main") is None  # another camera spends it too
    assert tickets.take(ticket, "cam00", "main") is None
    ticket = tickets.mint(7, "cam00", "main", SECRET)
    assert tickets.take(ticket, "cam00", "sub") is None
    ticket = tickets.mint(7, "cam00", "main", SECRET)
    assert tickets.take(ticket, "cam00", "main") == (7, SECRET)
    assert tickets.take(ticket, "cam00", "main") is None  # used
    assert tickets.take("made-up", "cam00", "main") is None
    assert len(tickets) == 0
    assert "the-session-secret" not in repr(SECRET)


def test_a_ticket_expires_and_the_store_stays_bounded() -> None:
    clock = Clock()
    tickets = MseTickets(clock)
    late = tickets.mint(7, "cam00", "main", SECRET)
    clock.now += TICKET_TTL_S + 0.01
    assert tickets.take(late, "cam00", "main") is None
    for _ in range(MAX_TICKETS + 5):
        tickets.mint(7, "cam00", "main", SECRET)
    assert len(tickets) == MAX_TICKETS
    clock.now += TICKET_TTL_S + 0.01
    tickets.mint(7, "cam00", "main", SECRET)  # minting drops the expired ones
    assert len(tickets) == 1
