"""The events service of a simulated ONVIF camera: PullPoint subscriptions (ONVIF Event
Service Specification 5.12; WS-BaseNotification for Renew and Unsubscribe).

``raise_event`` (any thread) queues a notification on every live subscription; a waiting
PullMessages long poll returns at once. A new subscription, and SetSynchronizationPoint,
first get the current state of each topic ("Initialized"), as cameras send it. Memory is
bounded: at most MAX_SUBSCRIPTIONS live subscriptions (the oldest is dropped), at most
QUEUE_LIMIT messages waiting on each.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lxml import etree  # type: ignore[import-untyped]

from surveillance.simulator.onvif_answers import VIDEO_SOURCE
from surveillance.simulator.onvif_soap import (
    SoapFault,
    SoapRequest,
    el,
    invalid,
    text,
    xs_datetime,
    xs_duration_s,
)
from surveillance.simulator.onvif_specs import OnvifDeviceSpec

TOPICS = {
    "motion": "tns1:VideoSource/MotionAlarm",
    "tamper": "tns1:VideoSource/GlobalSceneChange/ImagingService",
}
CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
DEFAULT_TERMINATION_S = 60.0
MAX_TERMINATION_S = 3600.0
MAX_PULL_WAIT_S = 60.0  # a PullMessages Timeout longer than this is cut to it
MAX_MESSAGE_LIMIT = 100
MAX_SUBSCRIPTIONS = 16
QUEUE_LIMIT = 1000

Handler = Callable[[SoapRequest], "etree._Element | Awaitable[etree._Element]"]


@dataclass
class _Subscription:
    number: str
    terminates_at: datetime  # device clock
    queue: deque[etree._Element] = field(default_factory=lambda: deque(maxlen=QUEUE_LIMIT))
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


def notification(kind: str, state: bool, at: datetime, operation: str) -> etree._Element:
    return el(
        "wsnt:NotificationMessage",
        el("wsnt:Topic", TOPICS[kind], Dialect=CONCRETE_SET),
        el(
            "wsnt:Message",
            el(
                "tt:Message",
                el("tt:Source", el("tt:SimpleItem", Name="Source", Value=VIDEO_SOURCE)),
                el(
                    "tt:Data", el("tt:SimpleItem", Name="State", Value="true" if state else "false")
                ),
                UtcTime=xs_datetime(at),
                PropertyOperation=operation,
            ),
        ),
    )


def _termination(value: str | None, now: datetime) -> datetime:
    """An InitialTerminationTime / TerminationTime: a duration from now, or an absolute time
    (on the device's clock); bounded to MAX_TERMINATION_S."""
    seconds = DEFAULT_TERMINATION_S
    if value:
        relative = xs_duration_s(value)
        if relative is not None:
            seconds = relative
        else:
            try:
                absolute = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise SoapFault(
                    400, "env:Sender", "ter:InvalidArgVal", "unreadable termination time"
                ) from None
            if absolute.tzinfo is None:
                raise SoapFault(
                    400, "env:Sender", "ter:InvalidArgVal", "termination time without a zone"
                )
            seconds = (absolute - now).total_seconds()
    if seconds <= 0:
        raise invalid("termination time in the past")
    return now + timedelta(seconds=min(seconds, MAX_TERMINATION_S))


class EventBroker:
    def __init__(self, spec: OnvifDeviceSpec, clock: Callable[[], datetime]) -> None:
        self.spec = spec
        self._clock = clock
        self._lock = threading.Lock()
        self._states = {"motion": False, "tamper": False}
        self._subscriptions: dict[str, _Subscription] = {}
        self._numbers = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def close(self) -> None:
        self._loop = None
        for subscription in self._subscriptions.values():
            subscription.arrived.set()
        self._subscriptions.clear()

    def subscriptions(self) -> int:
        return len(self._subscriptions)

    def waiting_polls(self) -> int:
        """PullMessages requests waiting for a message now (tests: raise while one waits)."""
        return self._waiting

    def raise_event(self, kind: str, state: bool) -> None:
        """Any thread. Queued on the device's loop, in the order raised."""
        if kind not in TOPICS:
            raise ValueError(f"unknown event kind {kind!r}; one of {sorted(TOPICS)}")
        at = self._clock()
        with self._lock:
            self._states[kind] = state
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._publish, kind, state, at)

    def _publish(self, kind: str, state: bool, at: datetime) -> None:
        for subscription in self._subscriptions.values():
            subscription.queue.append(notification(kind, state, at, "Changed"))
            subscription.arrived.set()

    def _initialize(self, subscription: _Subscription) -> None:
        now = self._clock()
        with self._lock:
            states = dict(self._states)
        for kind, state in states.items():
            subscription.queue.append(notification(kind, state, now, "Initialized"))
        subscription.arrived.set()

    def handlers(self) -> dict[tuple[str, str], Handler]:
        return {
            ("tev", "GetEventProperties"): lambda _: self._properties(),
            ("tev", "CreatePullPointSubscription"): self._create,
            ("tev", "PullMessages"): self._pull,
            ("tev", "SetSynchronizationPoint"): self._synchronize,
            ("wsnt", "Renew"): self._renew,
            ("wsnt", "Unsubscribe"): self._unsubscribe,
        }

    def _subscription(self, soap: SoapRequest) -> _Subscription:
        subscription = self._subscriptions.get(soap.pullpoint or "")
        if subscription is not None and subscription.terminates_at <= self._clock():
            del self._subscriptions[subscription.number]
            subscription = None
        if subscription is None:
            raise SoapFault(
                400, "env:Sender", "ter:InvalidArgVal/ter:NoSubscription", "no such subscription"
            )
        return subscription

    def _properties(self) -> etree._Element:
        topic_set = el(
            "wstop:TopicSet",
            el(
                "tns1:VideoSource",
                el("tns1:MotionAlarm", **{"{http://docs.oasis-open.org/wsn/t-1}topic": "true"}),
                el(
                    "tns1:GlobalSceneChange",
                    el(
                        "tns1:ImagingService",
                        **{"{http://docs.oasis-open.org/wsn/t-1}topic": "true"},
                    ),
                ),
            ),
        )
        return el(
            "tev:GetEventPropertiesResponse",
            el("tev:TopicNamespaceLocation", "http://www.onvif.org/onvif/ver10/topics/topicns.xml"),
            el("wsnt:FixedTopicSet", "true"),
            topic_set,
            el("wsnt:TopicExpressionDialect", CONCRETE_SET),
            el(
                "tev:MessageContentFilterDialect",
                "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter",
            ),
            el(
                "tev:MessageContentSchemaLocation",
                "http://www.onvif.org/onvif/ver10/schema/onvif.xsd",
            ),
        )

    def _create(self, soap: SoapRequest) -> etree._Element:
        now = self._clock()
        terminates_at = _termination(text(soap.operation, "tev:InitialTerminationTime"), now)
        if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
            oldest = next(iter(self._subscriptions))
            self._subscriptions.pop(oldest).arrived.set()
        number = str(next(self._numbers))
        subscription = _Subscription(number, terminates_at)
        self._subscriptions[number] = subscription
        self._initialize(subscription)
        return el(
            "tev:CreatePullPointSubscriptionResponse",
            el(
                "tev:SubscriptionReference",
                el("wsa:Address", f"{self.spec.base_url}/onvif/pullpoint/{number}"),
            ),
            el("wsnt:CurrentTime", xs_datetime(now)),
            el("wsnt:TerminationTime", xs_datetime(terminates_at)),
        )

    async def _pull(self, soap: SoapRequest) -> etree._Element:
        subscription = self._subscription(soap)
        wait_s = xs_duration_s(text(soap.operation, "tev:Timeout"))
        try:
            limit = int(text(soap.operation, "tev:MessageLimit") or "0")
        except ValueError:
            raise SoapFault(
                400, "env:Sender", "ter:InvalidArgVal", "MessageLimit is not a number"
            ) from None
        if wait_s is None or limit < 1:
            raise SoapFault(
                400, "env:Sender", "ter:InvalidArgVal", "a Timeout and a MessageLimit of 1 or more"
            )
        if not subscription.queue:
            subscription.arrived.clear()
            self._waiting += 1
            try:
                with contextlib.suppress(TimeoutError):
                    wait = subscription.arrived.wait()
                    await asyncio.wait_for(wait, min(wait_s, MAX_PULL_WAIT_S))
            finally:
                self._waiting -= 1
        messages = [
            subscription.queue.popleft()
            for _ in range(min(limit, MAX_MESSAGE_LIMIT, len(subscription.queue)))
        ]
        return el(
            "tev:PullMessagesResponse",
            el("tev:CurrentTime", xs_datetime(self._clock())),
            el("tev:TerminationTime", xs_datetime(subscription.terminates_at)),
            *messages,
        )

    def _synchronize(self, soap: SoapRequest) -> etree._Element:
        self._initialize(self._subscription(soap))
        return el("tev:SetSynchronizationPointResponse")

    def _renew(self, soap: SoapRequest) -> etree._Element:
        subscription = self._subscription(soap)
        now = self._clock()
        subscription.terminates_at = _termination(text(soap.operation, "wsnt:TerminationTime"), now)
        return el(
            "wsnt:RenewResponse",
            el("wsnt:TerminationTime", xs_datetime(subscription.terminates_at)),
            el("wsnt:CurrentTime", xs_datetime(now)),
        )

    def _unsubscribe(self, soap: SoapRequest) -> etree._Element:
        subscription = self._subscription(soap)
        del self._subscriptions[subscription.number]
        subscription.arrived.set()
        return el("wsnt:UnsubscribeResponse")
