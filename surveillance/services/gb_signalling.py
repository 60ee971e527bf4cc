"""What the GB/T 28181 player and control need of the SIP registry (services/gb_registry.py):
its transaction client, who this service is in requests, and where each platform is."""

from __future__ import annotations

from typing import Protocol

from surveillance.gb28181.sip_message import LocalParty
from surveillance.gb28181.transactions import SipClient
from surveillance.gb28181.transport import Peer


class Signalling(Protocol):
    @property
    def client(self) -> SipClient: ...

    @property
    def local(self) -> LocalParty: ...

    def peer(self, platform_id: str) -> Peer | None:
        """The platform's registered SIP address and transport; None when it is not
        registered (or went offline)."""
        ...
