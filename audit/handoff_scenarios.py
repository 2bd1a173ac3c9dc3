"""The handoff scenario library: scripted journeys on all four channels, each with the flags
it must and must not raise. The test suite plays every one against the real webhook with
the clock under control (tests/test_handoff_scenarios.py); `seed_demo` plays them into the
demo data, ending in the recent past, so the inbox shows each story.

A scenario is a list of steps at minutes after its start. Each step is delivered as one
signed event batch at `at` (or together with the steps sharing its `batch`), and may say
it *occurred* earlier than it was delivered (`occurred`), which is how out-of-order
delivery is scripted. A `sweep` step runs the handoff sweep at that instant.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from conversations.services import raw_event_ingest

Payload = dict[str, Any]

BUSINESS = {
    "whatsapp": "whatsapp:+14155550100",
    "sms": "+14155550100",
    "email": "support@brisa-home.example",
    "web": "widget:brisa-home",
}
AI = {"kind": "ai", "id": "support-bot", "name": "Ava (AI)"}


@dataclass(frozen=True)
class Step:
    at: float  # minutes after the scenario's start, when it is delivered
    kind: str  # customer | ai | human | handoff.* | conversation.* | sweep | redeliver
    body: str = ""
    data: Payload = field(default_factory=dict)
    occurred: float | None = None  # minutes; when it happened, if earlier than delivered
    batch: int | None = None  # steps with the same batch number go in one delivery
    agent: str = "nora.agent"


@dataclass(frozen=True)
class Expect:
    """A flag the scenario must (or must not) end with: kind, and optionally the reason
    (handoff_dropped's `reasons`) or the waiting state (handoff_stalled's `stalls`)."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.detail}" if self.detail else self.kind


@dataclass(frozen=True)
class Scenario:
    key: str
    channel: str
    title: str
    steps: tuple[Step, ...]
    must: tuple[Expect, ...] = ()
    must_not: tuple[Expect, ...] = ()
    # Handoff states at the end, in order of the conversation's handoffs.
    states: tuple[str, ...] = ()
    # The scenario's start, as (ISO weekday 1-7, "HH:MM") in UTC, when business hours
    # matter; else the runner's start is used as is.
    starts: tuple[int, str] | None = None
    # Extra HANDOFF_AUDITOR settings (e.g. a business-hours calendar) for this scenario.
    settings: Payload = field(default_factory=dict)


def _conversation(scenario: Scenario) -> Payload:
    return {
        "channel": scenario.channel,
        "external_id": f"scn-{scenario.key}",
        "business_address": BUSINESS[scenario.channel],
        "customer_address": _customer(scenario),
    }


def _customer(scenario: Scenario) -> str:
    # Deterministic across processes (hash() of a str is salted per process).
    digits = sum(ord(c) * (i + 1) for i, c in enumerate(scenario.key)) % 10000
    return {
        "whatsapp": f"whatsapp:+1415556{digits:04d}",
        "sms": f"+1415556{digits:04d}",
        "email": f"{scenario.key}@customer.example",
        "web": f"visitor-{scenario.key}",
    }[scenario.channel]


def step_event(scenario: Scenario, index: int, step: Step, start: datetime) -> Payload:
    """The signed-event payload of one step."""
    at = start + timedelta(minutes=step.at if step.occurred is None else step.occurred)
    stamp = at.isoformat()
    conversation = _conversation(scenario)
    key = f"scn-{scenario.key}-{index}"
    if step.kind in ("customer", "ai", "human"):
        author = {
            "customer": {
                "kind": "customer",
                "id": conversation["customer_address"],
                "name": "Customer",
            },
            "ai": AI,
            "human": {
                "kind": "human",
                "id": step.agent,
                "name": step.agent.replace(".", " ").title(),
            },
        }[step.kind]
        return {
            "type": "message.created",
            "timestamp": stamp,
            "data": {
                "channel": scenario.channel,
                "direction": "inbound" if step.kind == "customer" else "outbound",
                "author": author,
                "conversation": conversation,
                "provider_message_id": key,
                "body": step.body,
                "sent_at": stamp,
                **step.data,
            },
        }
    data: Payload = {"conversation": conversation, **step.data}
    if step.kind == "handoff.requested":
        data.setdefault("requested_by", "ai")
    if step.kind == "handoff.queued":
        data.setdefault("queue", "general")
    if step.kind == "handoff.assigned":
        data.setdefault("agent", {"id": step.agent, "name": step.agent.replace(".", " ").title()})
    return {"type": step.kind, "id": key, "timestamp": stamp, "data": data}


Deliver = Callable[[list[Payload], str, datetime], None]
Sweep = Callable[[datetime], None]


def scenario_play(
    scenario: Scenario,
    *,
    start: datetime,
    deliver: Deliver,
    sweep: Sweep,
    until: float | None = None,
) -> datetime:
    """Play a scenario: `deliver(events, delivery_id, at)` for each delivery and
    `sweep(at)` for each sweep step, in delivery order. Returns the last instant."""
    deliveries: list[tuple[float, str, list[Payload]]] = []
    batches: dict[int, list[Payload]] = {}
    last_id = ""
    for index, step in enumerate(scenario.steps, start=1):
        if until is not None and step.at > until:
            break
        if step.kind == "sweep":
            deliveries.append((step.at, "sweep", []))
        elif step.kind == "redeliver":
            deliveries.append((step.at, last_id, deliveries[-1][2]))
        elif step.batch is not None and step.batch in batches:
            batches[step.batch].append(step_event(scenario, index, step, start))
        else:
            events = [step_event(scenario, index, step, start)]
            last_id = f"scn-{scenario.key}-d{index}"
            deliveries.append((step.at, last_id, events))
            if step.batch is not None:
                batches[step.batch] = events
    last = start
    for minutes, delivery_id, events in deliveries:
        last = start + timedelta(minutes=minutes)
        if delivery_id == "sweep":
            sweep(last)
        else:
            deliver(events, delivery_id, last)
    return last


def scenario_ingest(events: list[Payload], delivery_id: str, at: datetime) -> None:
    """A `deliver` that stores the batch the way POST /hooks/events/ does, without HTTP
    (for the demo data; the tests go through the endpoint)."""
    raw_event_ingest(
        provider="events",
        kind="events",
        dedupe_key=f"webhook:{delivery_id}",
        body=json.dumps(events, ensure_ascii=False),
        content_type="application/json",
        received_at=at,
    )


def _s(at: float, kind: str, body: str = "", **kw: Any) -> Step:
    return Step(at=at, kind=kind, body=body, **kw)


def _e(kind: str, detail: str = "") -> Expect:
    return Expect(kind, detail)


STALLED, DROPPED, MISSED = "handoff_stalled", "handoff_dropped", "handoff_missed"

# Monday 09:00-18:00 Europe/Madrid, weekdays; the AI covers the rest.
MADRID_HOURS = {
    "timezone": "Europe/Madrid",
    "weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-08"],
}

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "web-on-time",
        "web",
        "Asked for a person, queued, an agent answered within the SLA",
        (
            _s(0, "customer", "My order #5521 is late, can I talk to a person?"),
            _s(0.2, "ai", "Of course, I'm connecting you with a colleague now."),
            _s(
                0.3,
                "handoff.requested",
                data={"requested_by": "customer", "reason": "asked for a person"},
            ),
            _s(0.5, "handoff.queued", data={"queue": "tier1"}),
            _s(2, "handoff.assigned"),
            _s(3, "human", "Hi, I'm Nora. Your parcel arrives tomorrow."),
            _s(4, "customer", "Thanks!"),
            _s(5, "human", "You're welcome, have a nice day."),
            _s(6, "conversation.resolved"),
            _s(7, "conversation.closed"),
            _s(60, "sweep"),
        ),
        must_not=(_e(STALLED), _e(DROPPED), _e(MISSED)),
        states=("resolved",),
    ),
    Scenario(
        "web-late-queue",
        "web",
        "Sat in the queue past its limit, then a human replied",
        (
            _s(0, "customer", "I need to change my delivery address"),
            _s(0.5, "handoff.requested", data={"reason": "address change needs an agent"}),
            _s(1, "handoff.queued", data={"queue": "tier1"}),
            _s(8, "sweep"),
            _s(12, "human", "Sorry for the wait! Which address should we use?"),
        ),
        must=(_e(STALLED, "queued"),),
        must_not=(_e(DROPPED), _e(MISSED)),
        states=("engaged",),
    ),
    Scenario(
        "whatsapp-dropped-at-close",
        "whatsapp",
        "Handoff requested, then the conversation was closed before any human engaged",
        (
            _s(0, "customer", "Quiero hablar con un agente, por favor"),
            _s(0.2, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.5, "handoff.queued"),
            _s(1.5, "conversation.closed"),
            _s(30, "sweep"),
        ),
        must=(_e(DROPPED, "closed_before_human"),),
        must_not=(_e(MISSED),),
        states=("abandoned",),
    ),
    Scenario(
        "whatsapp-window-expired",
        "whatsapp",
        "Queued on a Friday night; the 24-hour window closed before anyone answered",
        (
            _s(0, "customer", "My washing machine leaks, I need a technician"),
            _s(0.3, "handoff.requested"),
            _s(0.5, "handoff.queued", data={"queue": "repairs"}),
            _s(60, "sweep"),
            _s(24 * 60 + 5, "sweep"),
        ),
        must=(_e(DROPPED, "whatsapp_window_expired"), _e(STALLED, "queued")),
        must_not=(_e(MISSED),),
        states=("queued",),
    ),
    Scenario(
        "sms-ai-kept-talking",
        "sms",
        "The AI requested a human and then kept answering",
        (
            _s(0, "customer", "Cancel my subscription"),
            _s(0.1, "handoff.requested", data={"reason": "cancellation"}),
            _s(0.2, "ai", "I'll get a colleague for you."),
            _s(0.5, "customer", "ok"),
            _s(0.6, "ai", "Meanwhile, did you know about our premium plan?"),
            _s(1.0, "ai", "Premium has 20% off this week!"),
            _s(1.5, "human", "Hello, I can help with the cancellation."),
        ),
        must=(_e(DROPPED, "ai_kept_answering"),),
        must_not=(_e(MISSED), _e(STALLED)),
        states=("engaged",),
    ),
    Scenario(
        "web-missed-request",
        "web",
        "The customer asked for a human twice; the AI answered on and never handed off",
        (
            _s(0, "customer", "I want to speak to a real person"),
            _s(0.2, "ai", "I can help you with that! What's your order number?"),
            _s(0.5, "customer", "No, a human please"),
            _s(0.7, "ai", "Sure, what is your order number?"),
            _s(1, "ai", "Is there anything else I can help with?"),
        ),
        must=(_e(MISSED),),
        must_not=(_e(DROPPED), _e(STALLED)),
        states=(),
    ),
    Scenario(
        "email-weekend-business-hours",
        "email",
        "Requested on Saturday; the SLA clock starts Monday 09:00 Madrid time",
        (
            _s(0, "customer", "Could someone from billing call me back?"),
            _s(1, "handoff.requested"),
            _s(2, "handoff.queued", data={"queue": "billing"}),
            # Monday 09:30 Madrid = 08:30 UTC; Saturday 10:00 UTC start -> +46.5 h.
            _s(46.5 * 60, "sweep"),
            _s(47 * 60, "human", "Good morning, this is billing. Calling you now."),
        ),
        must_not=(_e(STALLED), _e(DROPPED), _e(MISSED)),
        states=("engaged",),
        starts=(6, "10:00"),
        settings={
            "SLA_CALENDAR": MADRID_HOURS,
            "SLA_POLICIES": {
                "*": {
                    "requested": 3600,
                    "queued": 4 * 3600,
                    "assigned": 4 * 3600,
                    "reply": 8 * 3600,
                }
            },
        },
    ),
    Scenario(
        "web-out-of-order",
        "web",
        "The assignment arrived before the request; nothing moves backwards",
        (
            _s(0, "customer", "Talk to an agent"),
            _s(1, "handoff.assigned", occurred=0.8),
            _s(1.1, "handoff.requested", occurred=0.2),
            _s(1.2, "handoff.queued", occurred=0.4),
            _s(1.5, "human", "Hi, Nora here."),
            _s(30, "sweep"),
        ),
        must_not=(_e(STALLED), _e(DROPPED), _e(MISSED)),
        states=("engaged",),
    ),
)


def scenario_get(key: str) -> Scenario:
    return next(s for s in SCENARIOS if s.key == key)
