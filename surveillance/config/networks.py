"""``ingest.allowed_networks``: which stream hosts the node may connect to.

Used twice: by the loader, to refuse a configured URL outside the list, and by ingest, to
refuse a camera's RTSP redirect to a host outside it.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class AllowedHosts:
    """CIDR ranges, or host names listed verbatim; an empty list allows every host."""

    def __init__(self, entries: list[str]) -> None:
        self._networks = [ipaddress.ip_network(e, strict=False) for e in entries if "/" in e]
        self._names = {e.lower() for e in entries if "/" not in e}
        self._open = not entries

    def permits(self, url: str) -> bool:
        if self._open:
            return True
        host = (urlsplit(url).hostname or "").lower()
        if host in self._names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False  # a name not listed: it could resolve anywhere
        return any(address in network for network in self._networks)
