"""ONVIF events by PullPoint: subscribe, pull, renew, unsubscribe, and what a message means.

ONVIF Core Specification, "Real-time Pull-Point Notification Interface": CreatePullPointSubscription
on the device's events service answers with the address of a subscription of its own, on
which PullMessages waits up to its Timeout for notifications (a long poll) and Renew
pushes the termination time on. Termination times here are relative (``PT60S``): a camera
whose clock is off still counts them right.

A notification names a topic and carries items. The ones the service acts on (ONVIF
Profile S and T topics): motion, ``tns1:VideoSource/MotionAlarm`` (Data ``State``) and
``tns1:RuleEngine/CellMotionDetector/Motion`` (``IsMotion``); tamper,
``tns1:VideoSource/GlobalSceneChange/ImagingService`` (``State``) and
``tns1:RuleEngine/TamperDetector/Tamper`` (``IsTamper``). Other topics are kept with kind
None. Everything read from the device is bounded and made printable before it goes on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from zeep.exceptions import Fault

from surveillance.onvif.client import OnvifClient, translate_errors
from surveillance.onvif.errors import BadAnswer, OnvifError

EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
PULLPOINT_NS = f"{EVENTS_NS}/PullPointSubscription"  # where onvif-zeep-async looks for it

NotificationKind = Literal["motion", "tamper"]
# Topic (namespace prefixes left out) -> (kind, the data item holding the state).
TOPICS: dict[str, tuple[NotificationKind, str]] = {
    "VideoSource/MotionAlarm": ("motion", "State"),
    "RuleEngine/CellMotionDetector/Motion": ("motion", "IsMotion"),
    "VideoSource/GlobalSceneChange/ImagingService": ("tamper", "State"),
    "RuleEngine/TamperDetector/Tamper": ("tamper", "IsTamper"),
}
MAX_TOPIC = 200  # characters of a topic kept (a hostile device may send megabytes)
MAX_SOURCE = 64
MAX_MESSAGES = 100  # notifications read from one answer


class EventsUnsupported(OnvifError):
    """The device has no events service, or refuses PullPoint subscriptions."""

    status_code = 409
    outcome = "unsupported"


@dataclass(frozen=True)
class OnvifNotification:
    topic: str  # namespace prefixes left out: "VideoSource/MotionAlarm"
    kind: NotificationKind | None  # None: a topic this service does not act on
    state: bool | None  # the condition holds (None: no state item, or not a boolean)
    at: datetime  # the message's UtcTime, by the DEVICE's clock (UTC); now if it had none
    source: str | None  # e.g. the video source token


def _printable(text: str, limit: int) -> str:
    return "".join(c for c in text[: limit * 2] if c.isprintable())[:limit]


def _topic(message: Any) -> str:
    topic = getattr(message, "Topic", None)
    value = getattr(topic, "_value_1", topic)
    if not isinstance(value, str):
        return ""
    # "tns1:VideoSource/MotionAlarm" and "tns1:VideoSource/tnsx:Vendor": prefixes go, as
    # each device names its namespaces as it likes.
    parts = (part.split(":")[-1] for part in value.strip().strip("/").split("/"))
    return _printable("/".join(parts), MAX_TOPIC)


def _simple_items(container: Any) -> dict[str, str]:
    """Name -> Value of an ItemList (``Source`` or ``Data``): a zeep object, or an lxml
    element when zeep could not type the message."""
    if container is None:
        return {}
    items: dict[str, str] = {}
    if hasattr(container, "iter"):  # an lxml element
        for element in container.iter():
            if isinstance(element.tag, str) and element.tag.endswith("SimpleItem"):
                name, value = element.get("Name"), element.get("Value")
                if name is not None and value is not None:
                    items[name] = value
        return items
    for item in getattr(container, "SimpleItem", None) or ():
        name, value = getattr(item, "Name", None), getattr(item, "Value", None)
        if isinstance(name, str) and value is not None:
            items[name] = str(value)
    return items


def _part(message: Any, name: str) -> Any:
    if hasattr(message, "iter"):  # an lxml element: its child of that local name
        for child in message:
            if isinstance(child.tag, str) and child.tag.endswith("}" + name):
                return child
        return None
    return getattr(message, name, None)


def _boolean(value: str | None) -> bool | None:
    """xs:boolean: "true", "false", "1", "0" (some devices write "True")."""
    if value is None:
        return None
    return {"true": True, "1": True, "false": False, "0": False}.get(value.strip().lower())


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return datetime.now(UTC)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def parse_notification(holder: Any) -> OnvifNotification:
    """One wsnt:NotificationMessage as zeep read it."""
    topic = _topic(holder)
    outer = getattr(holder, "Message", None)
    message = getattr(outer, "_value_1", outer)  # the tt:Message inside wsnt:Message
    if message is not None and hasattr(message, "get") and hasattr(message, "iter"):
        at = _utc(message.get("UtcTime"))
    else:
        at = _utc(getattr(message, "UtcTime", None))
    source_items = _simple_items(_part(message, "Source")) if message is not None else {}
    data = _simple_items(_part(message, "Data")) if message is not None else {}
    known = TOPICS.get(topic)
    kind, state = None, None
    if known is not None:
        kind, state = known[0], _boolean(data.get(known[1]))
    source = next(iter(source_items.values()), None)
    return OnvifNotification(
        topic=topic,
        kind=kind,
        state=state,
        at=at,
        source=None if source is None else _printable(source, MAX_SOURCE) or None,
    )


def parse_notifications(result: Any) -> list[OnvifNotification]:
    """The notifications of a PullMessages answer (at most MAX_MESSAGES)."""
    messages = getattr(result, "NotificationMessage", None) or []
    if not isinstance(messages, list):
        messages = [messages]
    return [parse_notification(message) for message in messages[:MAX_MESSAGES]]


def _duration(seconds: float) -> str:
    return f"PT{max(1, int(seconds))}S"  # xs:duration


def _unsupported(text: str) -> bool:
    """ter:ActionNotSupported, reason "Optional Action Not Implemented" (ONVIF Core
    Specification, SOAP fault codes), or the like: no PullPoint here."""
    return any(word in text for word in ("NotSupported", "Not Implemented", "NoSuchService"))


def _fault_text(fault: Fault) -> str:
    words = [str(fault.message or ""), str(getattr(fault, "code", "") or "")]
    return " ".join(words + [str(code) for code in getattr(fault, "subcodes", None) or ()])


class PullPoint:
    """One PullPoint subscription on a connected :class:`OnvifClient`."""

    def __init__(self, client: OnvifClient, url: str, *, termination_s: float, timeout_s: float):
        """``url``: the device service URL (errors name it; the subscription must be on its
        host); ``termination_s``: the subscription's life, renewed before it ends;
        ``timeout_s``: a request's bound (a pull's is its wait plus this)."""
        self._client = client
        self._url = url
        self._termination_s = termination_s
        self._timeout_s = timeout_s
        self._subscription: Any = None
        self._pull: Any = None
        self._expires_at = 0.0  # monotonic

    async def subscribe(self) -> None:
        """EventsUnsupported when the device offers no events service or refuses the
        subscription; another OnvifError when it cannot be asked."""
        camera = self._client.camera
        if EVENTS_NS not in camera.xaddrs:
            raise EventsUnsupported(f"{self._url}: the device offers no events service")
        async with translate_errors(self._url), asyncio.timeout(self._timeout_s):
            events = await camera.create_events_service()
            try:
                result = await events.CreatePullPointSubscription(
                    {"InitialTerminationTime": _duration(self._termination_s)}
                )
            except Fault as fault:  # before the translation makes it a DeviceFault
                if _unsupported(_fault_text(fault)):
                    raise EventsUnsupported(f"{self._url}: the device refuses PullPoint") from None
                raise
            address = result.SubscriptionReference.Address._value_1
            camera.xaddrs[PULLPOINT_NS] = self._checked_address(address)
            self._subscription = await camera.create_subscription_service("PullPointSubscription")
            self._pull = await camera.create_pullpoint_service()
        self._expires_at = time.monotonic() + self._lifetime(result)

    def _checked_address(self, address: Any) -> str:
        """The subscription's address, on the device's own host: a device may not send the
        node to knock elsewhere (ONVIF allows another port, not another host)."""
        if not isinstance(address, str) or not address.startswith(("http://", "https://")):
            raise BadAnswer(f"{self._url}: the subscription has no http address")
        if urlsplit(address).hostname != urlsplit(self._url).hostname:
            raise BadAnswer(f"{self._url}: the subscription is on another host; refused")
        return address.strip()

    def _lifetime(self, result: Any) -> float:
        """How long the subscription lives, by the device's own two times (both by its
        clock), else as asked."""
        current = getattr(result, "CurrentTime", None)
        termination = getattr(result, "TerminationTime", None)
        if isinstance(current, datetime) and isinstance(termination, datetime):
            seconds = (termination - current).total_seconds()
            if 0 < seconds <= 10 * self._termination_s:
                return seconds
        return self._termination_s

    @property
    def renew_due(self) -> bool:
        """Less than a third of the subscription's life is left (renew before it ends)."""
        return time.monotonic() >= self._expires_at - self._termination_s / 3

    async def pull(self, wait_s: float, limit: int) -> list[OnvifNotification]:
        """PullMessages: waits up to ``wait_s`` for notifications."""
        async with translate_errors(self._url), asyncio.timeout(wait_s + self._timeout_s):
            result = await self._pull.PullMessages(
                {"Timeout": _duration(wait_s), "MessageLimit": min(limit, MAX_MESSAGES)}
            )
        return parse_notifications(result)

    async def renew(self) -> None:
        async with translate_errors(self._url), asyncio.timeout(self._timeout_s):
            result = await self._subscription.Renew(
                {"TerminationTime": _duration(self._termination_s)}
            )
        self._expires_at = time.monotonic() + self._lifetime(result)

    async def unsubscribe(self) -> None:
        """Ends the subscription on the device (a courtesy: it ends by itself anyway)."""
        if self._subscription is None:
            return
        async with translate_errors(self._url), asyncio.timeout(self._timeout_s):
            await self._subscription.Unsubscribe()
        self._subscription = None
