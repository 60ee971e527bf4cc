"""Where to look for devices, as an administrator writes it: addresses, networks, ranges and
host names, each with an optional device service port.

``10.1.2.3``, ``10.1.2.0/24`` (its network and broadcast addresses left out),
``10.1.2.3-10.1.2.40``, ``10.1.2.3-40``, ``cam-7.example.net``, any of them followed by
``:8080``. The count is checked before anything is expanded, so ``10.0.0.0/8`` is refused
at once rather than built. IPv4 only (WS-Discovery here probes IPv4: SOAP-over-UDP's
239.255.255.250), unicast addresses only (a broadcast or multicast address would reach
every device on a segment, not the one named), and a network written with host bits set
(``10.1.2.5/20``) is refused with the network it would mean, not silently widened.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

DEFAULT_PORT = 80
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Multicast (224.0.0.0/4) and reserved (240.0.0.0/4, with 255.255.255.255): not one device.
_NOT_UNICAST = ipaddress.IPv4Network("224.0.0.0/3")
# RFC 1123 s.2.1 host names: dot-separated labels of letters, digits and inner hyphens.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_MAX_NAME = 253


@dataclass(frozen=True)
class Target:
    """One host to ask. ``port_given``: the entry named a port, so the device service is
    tried there directly even if WS-Discovery gets no answer (a routed network may drop UDP
    3702 yet let HTTP through). ``in_range``: every entry naming it names more hosts (a
    network or a range), so its silence is not news: most addresses of a network hold no
    camera; a host named alone that does not answer is reported."""

    host: str  # an IP address or a host name
    port: int = DEFAULT_PORT
    port_given: bool = False
    in_range: bool = False

    @property
    def device_url(self) -> str:
        """Where ONVIF devices usually serve their device service on this host and port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/onvif/device_service"


def parse_targets(entries: Sequence[str], max_hosts: int) -> list[Target]:
    """Every host the entries name, once each, in the order written.

    Raises ValueError naming the first bad entry, or saying how many hosts the entries name
    when that is more than ``max_hosts``."""
    parsed = [_parse_entry(entry) for entry in entries]
    total = sum(count for _, count, _ in parsed)
    if total > max_hosts:
        raise ValueError(f"the targets name {total} hosts; at most {max_hosts} are allowed")
    found: dict[tuple[str, int], Target] = {}
    for hosts, count, port in parsed:
        for host in hosts:
            key = (host, port or DEFAULT_PORT)
            known = found.get(key)
            if known is None:
                found[key] = Target(host, key[1], port is not None, count > 1)
            elif known.in_range and count == 1:  # also named alone: reported if silent
                found[key] = Target(host, key[1], known.port_given or port is not None)
    return list(found.values())


def _parse_entry(entry: str) -> tuple[Iterator[str], int, int | None]:
    """(the hosts, how many, the port named or None), checked but not yet expanded."""
    text = entry.strip()
    if not text or len(text) > 200 or any(c.isspace() for c in text):
        raise ValueError(f"bad target {entry!r}: expected an address, network, range or name")
    if "://" in text:
        raise ValueError(
            f"bad target {entry!r}: a URL; give the device's address, network, range or "
            "name, with :port if not 80"
        )
    spec, port = _split_port(text, entry)
    try:
        hosts, count = _hosts(spec)
    except ValueError as exc:
        raise ValueError(f"bad target {entry!r}: {exc}") from None
    return hosts, count, port


def _split_port(text: str, entry: str) -> tuple[str, int | None]:
    if text.startswith("["):  # [IPv6]:port
        end = text.find("]")
        if end < 0:
            raise ValueError(f"bad target {entry!r}: unclosed '['")
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad target {entry!r}: unexpected text after ']'")
        return text[1:end], _port(rest[1:], entry) if rest else None
    if text.count(":") == 1:
        spec, port = text.split(":")
        return spec, _port(port, entry)
    return text, None


def _port(text: str, entry: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ValueError(f"bad target {entry!r}: the port must be 1-65535")
    return int(text)


def _hosts(spec: str) -> tuple[Iterator[str], int]:
    if "/" in spec:
        try:
            network = ipaddress.ip_network(spec, strict=False)
        except ValueError:
            raise ValueError("not a network in CIDR notation (e.g. 10.1.2.0/24)") from None
        _unicast_ipv4(network[0], network[-1])
        if str(network.network_address) != spec.split("/", 1)[0]:
            raise ValueError(f"host bits set: did you mean {network}?")
        # A /31 or /32 (RFC 3021) has no network and broadcast address to leave out.
        count = network.num_addresses if network.num_addresses <= 2 else network.num_addresses - 2
        return (str(a) for a in network.hosts()), count
    if "-" in spec and _is_address(spec.split("-", 1)[0]):
        return _range(spec)
    if _is_address(spec):
        address = ipaddress.ip_address(spec)
        _unicast_ipv4(address, address)
        return iter([str(address)]), 1
    if len(spec) <= _MAX_NAME and all(_LABEL.fullmatch(label) for label in spec.split(".")):
        if spec.replace(".", "").isdigit():
            raise ValueError("not a valid IP address")
        return iter([spec.lower()]), 1
    raise ValueError("expected an address, network, range or name")


def _range(spec: str) -> tuple[Iterator[str], int]:
    first_text, last_text = spec.split("-", 1)
    first = ipaddress.ip_address(first_text)
    if last_text.isascii() and last_text.isdigit() and first.version == 4:  # 10.1.2.3-40
        prefix = first_text.rsplit(".", 1)[0]
        last_text = f"{prefix}.{last_text}"
    if not _is_address(last_text):
        raise ValueError("the range's end is not an address")
    last = ipaddress.ip_address(last_text)
    _unicast_ipv4(first, last)
    if int(last) < int(first):
        raise ValueError("the range ends before it starts")
    count = int(last) - int(first) + 1
    return (str(first + i) for i in range(count)), count


def _unicast_ipv4(first: _Address, last: _Address) -> None:
    """Refuses IPv6, and addresses from ``first`` to ``last`` that are not one device's."""
    if not isinstance(first, ipaddress.IPv4Address) or not isinstance(last, ipaddress.IPv4Address):
        raise ValueError("IPv6 is not supported: give IPv4 addresses or host names")
    if last >= _NOT_UNICAST[0]:
        raise ValueError("a broadcast, multicast or reserved address (224.0.0.0 and above)")
    if int(first) == 0:
        raise ValueError("0.0.0.0 is no device's address")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
