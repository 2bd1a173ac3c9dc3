"""The handoff scenario library: scripted journeys on all four channels, each with the flags
it must and must not raise. The test suite plays every one against the real webhook with
the clock under control (tests/handoffs/test_handoff_scenarios.py); `seed_demo` plays them into the
demo data, ending in the recent past, so the inbox shows each story (demo/handoffs.py).

A scenario is a list of steps at minutes after its start. Each step is delivered as one
signed event batch at `at` (or together with the steps sharing its `batch`), and may say
it *occurred* earlier than it was delivered (`occurred`), which is how out-of-order
delivery is scripted. A `sweep` step runs the handoff sweep at that instant; `redeliver`
sends the previous delivery again (same webhook id) and `resend` sends its events again
under a new webhook id, as a sender that retries with fresh ids would.

What a scenario ends with is declared: the flags it `must` and `must_not` raise, the final
handoff `states`, and `checks` for any further figure (a flag's status, an evidence value,
a handoff field). `scenario_verify` tells what does not hold; both the tests and the demo
test use it. Every scenario ends settled: once played, no later sweep raises anything, so
the demo (where sweeps of other scenarios and beat run later) tells the same story.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from conversations.applier import raw_event_ingest
from conversations.models import Conversation, ConversationKey, Flag, Message
from conversations.raw_events import IngestResult
from handoffs.models import Handoff, SLAPolicy

Payload = dict[str, Any]

BUSINESS = {
    "whatsapp": "whatsapp:+14155550100",
    "sms": "+14155550100",
    "email": "support@brisa-home.example",
    "web": "widget:brisa-home",
}
AI = {"kind": "ai", "id": "support-bot", "name": "Ava (AI)"}
# The week scenarios with a weekday (`starts`) are written for: Monday 16 Nov 2026, 10:00
# UTC. The tests play every scenario in it; the demo moves them to a recent week.
REFERENCE_WEEK = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Step:
    at: float  # minutes after the scenario's start, when it is delivered
    # customer | ai | human | handoff.* | conversation.* | message.status | sweep |
    # redeliver | resend
    kind: str
    body: str = ""  # message text; for message.status, the status
    data: Payload = field(default_factory=dict)
    occurred: float | None = None  # minutes; when it happened, if earlier than delivered
    batch: int | None = None  # steps with the same batch number go in one delivery
    agent: str = "nora.agent"
    of: int | None = None  # message.status: the step (1-based) whose message it reports on


@dataclass(frozen=True)
class Expect:
    """A flag the scenario must (or must not) end with: kind, and optionally the reason
    (handoff_dropped's `reasons`) or the waiting state (handoff_stalled's `stalls`)."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.detail}" if self.detail else self.kind


@dataclass(frozen=True)
class Check:
    """One more fact a scenario ends with: the `path` of `subject` equals `value` (op "==")
    or contains it (op "contains").

    Subjects: "flag:<kind>", the conversation's flag of that kind (paths: status, note,
    count, evidence.<key>...); "handoff:<n>", its n-th handoff (a field, policy.<key>, or
    transitions: how many events its log holds); "wait:<n>:<kind>", the first wait of that
    kind of handoff n (a field); "message:<step>", the message a step sent (a field);
    "conversation" (a field)."""

    subject: str
    path: str
    value: Any
    op: str = "=="

    def __str__(self) -> str:
        return f"{self.subject} {self.path} {self.op} {self.value!r}"


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
    # The scenario's start, as (ISO weekday 1-7, "HH:MM") in UTC in REFERENCE_WEEK, when
    # business hours matter; else any start will do.
    starts: tuple[int, str] | None = None
    # Extra HANDOFF_AUDITOR settings (e.g. a business-hours calendar) for this scenario.
    settings: Payload = field(default_factory=dict)
    # SLA policy rows (the admin's) the scenario needs: SLAPolicy fields, limits in seconds.
    policies: tuple[Payload, ...] = ()
    checks: tuple[Check, ...] = ()

    @property
    def minutes(self) -> float:
        """How long the scenario lasts, to its last step."""
        return max(step.at for step in self.steps)


def scenario_start(scenario: Scenario, week: datetime = REFERENCE_WEEK) -> datetime:
    """When the scenario starts if played in the week of `week` (a Monday at 10:00 UTC)."""
    if scenario.starts is None:
        return week
    weekday, hhmm = scenario.starts
    hour, minute = map(int, hhmm.split(":"))
    return (week + timedelta(days=weekday - 1)).replace(hour=hour, minute=minute)


def _conversation(scenario: Scenario) -> Payload:
    return {
        "channel": scenario.channel,
        "external_id": f"scn-{scenario.key}",
        "business_address": BUSINESS[scenario.channel],
        "customer_address": scenario_customer(scenario),
    }


def scenario_customer(scenario: Scenario) -> str:
    # Deterministic across processes (hash() of a str is salted per process).
    digits = sum(ord(c) * (i + 1) for i, c in enumerate(scenario.key)) % 10000
    return {
        "whatsapp": f"whatsapp:+1415556{digits:04d}",
        "sms": f"+1415556{digits:04d}",
        "email": f"{scenario.key}@customer.example",
        "web": f"visitor-{scenario.key}",
    }[scenario.channel]


def _message_id(scenario: Scenario, index: int) -> str:
    return f"scn-{scenario.key}-{index}"


def step_event(scenario: Scenario, index: int, step: Step, start: datetime) -> Payload:
    """The signed-event payload of one step."""
    at = start + timedelta(minutes=step.at if step.occurred is None else step.occurred)
    stamp = at.isoformat()
    conversation = _conversation(scenario)
    key = _message_id(scenario, index)
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
    if step.kind == "message.status":
        assert step.of is not None, f"{scenario.key} step {index}: which message (of=)?"
        return {
            "type": "message.status",
            "timestamp": stamp,
            "data": {
                "provider_message_id": _message_id(scenario, step.of),
                "status": step.body,
                "occurred_at": stamp,
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


Deliver = Callable[[list[Payload], str, datetime], Any]
Sweep = Callable[[datetime], Any]


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
    last_id, last_events = "", []
    for index, step in enumerate(scenario.steps, start=1):
        if until is not None and step.at > until:
            break
        if step.kind == "sweep":
            deliveries.append((step.at, "sweep", []))
        elif step.kind == "redeliver":
            deliveries.append((step.at, last_id, last_events))
        elif step.kind == "resend":
            deliveries.append((step.at, f"scn-{scenario.key}-d{index}", last_events))
        elif step.batch is not None and step.batch in batches:
            batches[step.batch].append(step_event(scenario, index, step, start))
        else:
            last_events = [step_event(scenario, index, step, start)]
            last_id = f"scn-{scenario.key}-d{index}"
            deliveries.append((step.at, last_id, last_events))
            if step.batch is not None:
                batches[step.batch] = last_events
    last = start
    for minutes, delivery_id, events in deliveries:
        last = start + timedelta(minutes=minutes)
        if delivery_id == "sweep":
            sweep(last)
        else:
            deliver(events, delivery_id, last)
    return last


def scenario_ingest(events: list[Payload], delivery_id: str, at: datetime) -> IngestResult:
    """A `deliver` that stores the batch the way POST /hooks/events/ does, without HTTP
    (for the demo data; the tests go through the endpoint)."""
    return raw_event_ingest(
        provider="events",
        kind="events",
        dedupe_key=f"webhook:{delivery_id}",
        body=json.dumps(events, ensure_ascii=False),
        content_type="application/json",
        received_at=at,
    )


def scenario_policies_ensure(scenario: Scenario) -> None:
    """Create the SLA policy rows the scenario needs. Rows that exist are kept: one of the
    same name, or an active one for the same channel and queue (the admin's own)."""
    for spec in scenario.policies:
        fields = {
            name: timedelta(seconds=value) if name.endswith("_limit") else value
            for name, value in spec.items()
            if name != "name"
        }
        scope = SLAPolicy.objects.filter(
            active=True, channel=fields.get("channel", ""), queue=fields.get("queue", "")
        )
        if not (SLAPolicy.objects.filter(name=spec["name"]).exists() or scope.exists()):
            SLAPolicy.objects.create(name=spec["name"], **fields)


# --- verifying what a scenario ends with ---------------------------------------------------


def scenario_conversation(scenario: Scenario) -> Conversation:
    return ConversationKey.objects.get(key=f"events:scn-{scenario.key}").conversation


def _flag_details(flag: Flag) -> set[str]:
    return set(flag.evidence.get("reasons", [])) | set(flag.evidence.get("stalls", []))


def _matching(flags: list[Flag], expect: Expect) -> list[Flag]:
    return [
        f
        for f in flags
        if f.kind == expect.kind and (not expect.detail or expect.detail in _flag_details(f))
    ]


def _dig(value: Any, path: list[str]) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, dict) else getattr(value, part)
    return value


_MISSING = object()


def _check_actual(scenario: Scenario, conversation: Conversation, check: Check) -> Any:
    kind, _, rest = check.subject.partition(":")
    path = check.path.split(".")
    if kind == "flag":
        flags = list(Flag.objects.filter(conversation=conversation, kind=rest).order_by("pk"))
        if path == ["count"]:
            return len(flags)
        return _dig(flags[0], path) if flags else _MISSING
    if kind == "conversation":
        return _dig(conversation, path)
    if kind == "message":
        message = Message.objects.filter(
            provider="events", provider_message_id=_message_id(scenario, int(rest))
        ).first()
        return _MISSING if message is None else _dig(message, path)
    number, _, wait_kind = rest.partition(":")
    handoff = Handoff.objects.filter(conversation=conversation, number=int(number)).first()
    if handoff is None:
        return _MISSING
    if kind == "wait":
        wait = handoff.waits.filter(kind=wait_kind).order_by("started_at", "pk").first()
        return _MISSING if wait is None else _dig(wait, path)
    if path == ["transitions"]:
        return handoff.transitions.count()
    return _dig(handoff, path)


def scenario_verify(scenario: Scenario, conversation: Conversation) -> list[str]:
    """What the scenario promises and the conversation does not show (empty: all holds)."""
    problems = []
    flags = list(Flag.objects.filter(conversation=conversation))
    seen = [(f.kind, f.status, f.evidence) for f in flags]
    for expect in scenario.must:
        if not _matching(flags, expect):
            problems.append(f"{scenario.key}: expected {expect}, got {seen}")
    for expect in scenario.must_not:
        for flag in _matching(flags, expect):
            problems.append(f"{scenario.key}: unexpected {expect}: {flag.evidence}")
    problems += [f"{scenario.key}: {f.kind} without evidence" for f in flags if not f.evidence]
    states = tuple(
        Handoff.objects.filter(conversation=conversation)
        .order_by("number")
        .values_list("state", flat=True)
    )
    if states != scenario.states:
        problems.append(f"{scenario.key}: handoff states {states}, expected {scenario.states}")
    for check in scenario.checks:
        try:
            actual = _check_actual(scenario, conversation, check)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            actual = f"<{type(exc).__name__}: {exc}>"
        if actual is _MISSING:
            holds = False
            actual = "<missing>"
        elif check.op == "contains":
            holds = isinstance(actual, str | list | dict) and check.value in actual
        else:
            holds = actual == check.value
        if not holds:
            problems.append(f"{scenario.key}: expected {check}, got {actual!r}")
    return problems


# --- the scenarios ------------------------------------------------------------------------


def _s(at: float, kind: str, body: str = "", **kw: Any) -> Step:
    return Step(at=at, kind=kind, body=body, **kw)


def _e(kind: str, detail: str = "") -> Expect:
    return Expect(kind, detail)


def _c(subject: str, path: str, value: Any, op: str = "==") -> Check:
    return Check(subject, path, value, op)


STALLED, DROPPED, MISSED = "handoff_stalled", "handoff_dropped", "handoff_missed"
KINDS = (STALLED, DROPPED, MISSED)
NO_FLAGS = (_e(STALLED), _e(DROPPED), _e(MISSED))


def _business_hours(*holidays: str) -> Payload:
    """Weekdays 09:00-18:00 Europe/Madrid (the AI covers the rest), e-mail limits in
    hours, as HANDOFF_AUDITOR overrides."""
    return {
        "SLA_CALENDAR": {
            "timezone": "Europe/Madrid",
            "weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
            "holidays": ["2026-12-08", *holidays],
        },
        "SLA_POLICIES": {
            "*": {"requested": 3600, "queued": 4 * 3600, "assigned": 4 * 3600, "reply": 8 * 3600}
        },
    }


# An SLA policy row for one queue, as a support manager would add it in the admin.
VIP_POLICY: Payload = {
    "name": "Web VIP queue",
    "channel": "web",
    "queue": "vip",
    "requested_limit": 60,
    "queued_limit": 60,
    "assigned_limit": 60,
    "reply_limit": 120,
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
        must_not=(_e(STALLED), _e(MISSED)),
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
        settings=_business_hours(),
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
        checks=(
            # The request dates the handoff and says who asked, though it came second.
            _c("handoff:1", "requested_by", "ai"),
            _c("handoff:1", "time_to_human", 78.0),
        ),
    ),
    # --- WhatsApp ------------------------------------------------------------------------
    Scenario(
        "whatsapp-late-requested",
        "whatsapp",
        "Nobody picked up the request in time; the flag resolved itself when Nora replied",
        (
            _s(0, "customer", "Necesito hablar con una persona, por favor"),
            _s(0.2, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.3, "ai", "Te paso con un agente ahora mismo."),
            _s(5, "sweep"),
            _s(7, "human", "Hola, soy Nora. ¿En qué te ayudo?"),
            _s(9, "conversation.resolved"),
            _s(30, "sweep"),
        ),
        must=(_e(STALLED, "requested"),),
        must_not=(_e(DROPPED), _e(MISSED)),
        states=("resolved",),
        checks=(
            _c(f"flag:{STALLED}", "status", "resolved"),
            _c(f"flag:{STALLED}", "note", "Cleared automatically", "contains"),
            _c(f"flag:{STALLED}", "evidence.allowed_seconds", 120),
            _c("wait:1:requested", "met", False),
        ),
    ),
    Scenario(
        "whatsapp-window-moved",
        "whatsapp",
        "Queued overnight, but the customer wrote again after 20 h: the window moved, no drop",
        (
            _s(0, "customer", "My fridge stopped cooling, I need a technician to call me"),
            _s(0.3, "handoff.requested", data={"reason": "repair visit"}),
            _s(0.5, "handoff.queued", data={"queue": "repairs"}),
            _s(30, "sweep"),
            _s(20 * 60, "customer", "Hello? Still waiting for the technician"),
            _s(24 * 60 + 5, "sweep"),
            _s(25 * 60, "human", "Good morning! A technician can come tomorrow 9-12."),
            _s(48 * 60, "sweep"),
        ),
        must=(_e(STALLED, "queued"),),
        must_not=(_e(DROPPED), _e(MISSED)),
        states=("engaged",),
        checks=(_c("handoff:1", "window_expires_at", None),),
    ),
    Scenario(
        "whatsapp-window-customer-message-late",
        "whatsapp",
        "Twilio delivered the customer's message after the AI platform's handoff events; "
        "nobody answered and the window closed",
        (
            _s(0.2, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.3, "handoff.queued", data={"queue": "repairs"}),
            _s(0.5, "customer", "The oven door glass cracked, I need a technician", occurred=0),
            _s(30, "sweep"),
            _s(24 * 60 + 5, "sweep"),
        ),
        must=(_e(DROPPED, "whatsapp_window_expired"), _e(STALLED, "queued")),
        must_not=(_e(MISSED),),
        states=("queued",),
        checks=(_c(f"flag:{DROPPED}", "evidence.details.whatsapp_window_expired.state", "queued"),),
    ),
    Scenario(
        "whatsapp-two-handoffs-after-return",
        "whatsapp",
        "Nora helped and handed back to the AI; an hour later the customer asked again",
        (
            _s(0, "customer", "Can I speak to an agent about my invoice?"),
            _s(0.2, "ai", "Sure, I'm connecting you with a colleague."),
            _s(0.3, "handoff.requested", data={"requested_by": "customer"}),
            _s(1, "handoff.assigned"),
            _s(2, "human", "Hi, I'm Nora. I've corrected the invoice and sent it again."),
            _s(3, "customer", "Thanks, that's all"),
            _s(3.5, "human", "You're welcome! Ava will help with anything else."),
            _s(4, "handoff.returned", data={"reason": "customer's question answered"}),
            _s(10, "customer", "Ava, what's your return policy?"),
            _s(10.1, "ai", "You can return any item within 30 days."),
            _s(60, "customer", "Necesito hablar con un agente otra vez"),
            _s(60.2, "ai", "Te paso con un agente."),
            _s(60.3, "handoff.requested", data={"requested_by": "customer"}),
            _s(61, "handoff.queued", data={"queue": "returns"}),
            _s(63, "human", "Hola, soy Liam. ¿Qué artículo quieres devolver?", agent="liam.agent"),
            _s(65, "conversation.resolved"),
            _s(120, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("returned", "resolved"),
        checks=(_c("handoff:2", "agent_id", "liam.agent"), _c("handoff:2", "queue", "returns")),
    ),
    Scenario(
        "whatsapp-takeover",
        "whatsapp",
        "An agent stepped in while the AI was answering, with no handoff requested",
        (
            _s(0, "customer", "Hi, is the Lisboa chair back in stock?"),
            _s(0.2, "ai", "Not yet, it should be back in December."),
            _s(1, "customer", "It's for a gift, any chance sooner?"),
            _s(1.2, "ai", "I'm afraid I can't promise an earlier date."),
            _s(
                3,
                "human",
                "Nora from the store here: we have one in the showroom, shall I keep it?",
            ),
            _s(4, "customer", "Yes please!"),
            _s(6, "human", "Done, it's yours until Saturday."),
            _s(8, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("resolved",),
        checks=(
            _c("handoff:1", "requested_by", "human"),
            _c("handoff:1", "time_to_human", 0.0),
            _c("wait:1:reply", "met", True),
        ),
    ),
    Scenario(
        "whatsapp-missed-spanish",
        "whatsapp",
        "Pidió un asesor dos veces; la IA siguió respondiendo sin pasar a una persona",
        (
            _s(0, "customer", "Quiero hablar con un asesor, por favor"),
            _s(0.2, "ai", "¡Claro! ¿En qué te puedo ayudar?"),
            _s(1, "customer", "Con una persona real"),
            _s(1.2, "ai", "Entiendo. ¿Cuál es tu número de pedido?"),
            _s(30, "conversation.closed"),
            _s(60, "sweep"),
        ),
        must=(_e(MISSED),),
        must_not=(_e(STALLED), _e(DROPPED)),
        checks=(
            _c(f"flag:{MISSED}", "count", 1),
            _c(f"flag:{MISSED}", "evidence.times_asked", 2),
            _c(f"flag:{MISSED}", "evidence.matched", "hablar con un asesor"),
        ),
    ),
    Scenario(
        "whatsapp-returned-to-ai",
        "whatsapp",
        "The tracking tool came back, so the handoff went back to the AI; closed later, no drop",
        (
            _s(0, "customer", "Where is my order 4411?"),
            _s(0.2, "ai", "I can't reach the tracking system, let me get a colleague."),
            _s(0.3, "handoff.requested", data={"reason": "tracking tool down"}),
            _s(0.5, "handoff.queued"),
            _s(3, "handoff.returned", data={"reason": "tracking tool back up"}),
            _s(3.2, "ai", "Good news: your order arrives on Thursday."),
            _s(3.5, "ai", "Anything else I can do for you?"),
            _s(10, "conversation.closed"),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("returned",),
        checks=(_c("handoff:1", "ai_replies_after_request", 0),),
    ),
    Scenario(
        "whatsapp-close-overtook-request",
        "whatsapp",
        "The AI's request for a human was reported after the close it preceded",
        (
            _s(0, "customer", "I want to talk to a person"),
            _s(0.1, "ai", "Connecting you."),
            _s(2, "conversation.closed"),
            _s(3, "handoff.requested", occurred=1),
            _s(60, "sweep"),
        ),
        # The close judged the ask missed; the request, made before it, answered the ask
        # within one AI turn: that finding resolves itself.
        must=(_e(DROPPED, "closed_before_human"), _e(MISSED)),
        must_not=(_e(STALLED),),
        states=("abandoned",),
        checks=(
            _c(f"flag:{MISSED}", "status", "resolved"),
            _c(f"flag:{MISSED}", "note", "reported late", "contains"),
        ),
    ),
    Scenario(
        "whatsapp-request-reported-after-second-turn",
        "whatsapp",
        "Asked for a person; the request, made before the AI's second reply, arrived after it",
        (
            _s(0, "customer", "I want to talk to a person"),
            _s(0.1, "ai", "Sure, one moment."),
            _s(0.3, "ai", "Connecting you."),
            _s(1, "handoff.requested", occurred=0.2),
            _s(2, "human", "Hi, Nora here."),
            _s(60, "sweep"),
        ),
        # Judged missed at the second reply; the late request shows it was not.
        must=(_e(MISSED),),
        must_not=(_e(STALLED), _e(DROPPED)),
        states=("engaged",),
        checks=(
            _c(f"flag:{MISSED}", "status", "resolved"),
            _c("handoff:1", "ai_replies_after_request", 1),
        ),
    ),
    Scenario(
        "whatsapp-kept-talking-then-closed",
        "whatsapp",
        "The AI asked for a human, kept chatting, and the chat was closed before anyone came",
        (
            _s(0, "customer", "I need to talk to a person about my damaged sofa"),
            _s(0.1, "handoff.requested", data={"reason": "damage claim"}),
            _s(0.2, "ai", "I'm connecting you with a colleague."),
            _s(1, "customer", "ok"),
            _s(1.1, "ai", "Meanwhile, could you send a photo of the damage?"),
            _s(1.5, "conversation.closed"),
            _s(30, "sweep"),
        ),
        must=(_e(DROPPED, "ai_kept_answering"), _e(DROPPED, "closed_before_human")),
        must_not=(_e(STALLED), _e(MISSED)),
        states=("abandoned",),
        checks=(
            _c(f"flag:{DROPPED}", "count", 1),
            _c(f"flag:{DROPPED}", "evidence.reasons", ["ai_kept_answering", "closed_before_human"]),
            _c(f"flag:{DROPPED}", "evidence.details.ai_kept_answering.ai_replies_after_request", 2),
        ),
    ),
    # --- SMS -------------------------------------------------------------------------------
    Scenario(
        "sms-on-time",
        "sms",
        "Billing question handed to Liam, who answered within the SLA",
        (
            _s(0, "customer", "Can I speak to someone about my bill?"),
            _s(0.1, "ai", "Sure! Connecting you to our billing team."),
            _s(0.2, "handoff.requested", data={"requested_by": "customer"}),
            _s(1, "handoff.assigned", agent="liam.agent"),
            _s(3, "human", "Hi, Liam from billing. What looks wrong?", agent="liam.agent"),
            _s(4, "customer", "Two charges for one order"),
            _s(5, "human", "Refunded the second one just now.", agent="liam.agent"),
            _s(6, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("resolved",),
        checks=(
            _c("handoff:1", "time_to_human", 168.0),
            _c("handoff:1", "agent_id", "liam.agent"),
            _c("wait:1:assigned", "met", True),
        ),
    ),
    Scenario(
        "sms-late-assigned",
        "sms",
        "Assigned, but the agent's first reply came after the limit",
        (
            _s(0, "customer", "My package arrived broken"),
            _s(0.2, "ai", "Sorry! I'm passing this to a colleague."),
            _s(0.3, "handoff.requested", data={"reason": "damaged delivery"}),
            _s(0.5, "handoff.queued", data={"queue": "claims"}),
            _s(2, "handoff.assigned"),
            _s(8, "sweep"),
            _s(9, "human", "Hi, sorry for the wait: a replacement ships today."),
            _s(10, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must=(_e(STALLED, "assigned"),),
        must_not=(_e(STALLED, "requested"), _e(STALLED, "queued"), _e(DROPPED), _e(MISSED)),
        states=("resolved",),
        checks=(
            _c(f"flag:{STALLED}", "evidence.allowed_seconds", 300),
            _c(f"flag:{STALLED}", "evidence.over_by_seconds", 60.0),
            _c(f"flag:{STALLED}", "status", "resolved"),
        ),
    ),
    Scenario(
        "sms-late-twice",
        "sms",
        "Late to be queued and late again in the queue: one flag that tells both stalls",
        (
            _s(0, "customer", "My order never arrived"),
            _s(0.1, "handoff.requested", data={"reason": "lost parcel"}),
            _s(3, "sweep"),
            _s(4, "handoff.queued", data={"queue": "claims"}),
            _s(15, "sweep"),
            _s(16, "human", "Hi, Nora here: I'm sending a new one today."),
            _s(17, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must=(_e(STALLED, "requested"), _e(STALLED, "queued")),
        must_not=(_e(STALLED, "assigned"), _e(DROPPED), _e(MISSED)),
        states=("resolved",),
        checks=(
            _c(f"flag:{STALLED}", "count", 1),
            _c(f"flag:{STALLED}", "evidence.stalls", ["requested", "queued"]),
            _c(f"flag:{STALLED}", "severity", "high"),
            _c(f"flag:{STALLED}", "status", "resolved"),
            _c("handoff:1", "stalled_count", 2),
        ),
    ),
    Scenario(
        "sms-late-reply-no-auto-resolve",
        "sms",
        "Engaged, then the customer waited too long for the next reply; auto-resolve is off",
        (
            _s(0, "customer", "Hi"),
            _s(0.1, "ai", "Hi! How can I help?"),
            _s(1, "customer", "I'd like to talk to a human about a refund"),
            _s(1.1, "handoff.requested", data={"requested_by": "customer"}),
            _s(1.5, "human", "Hi, Nora here. What's the order number?"),
            _s(2, "customer", "It's 7781"),
            _s(13, "sweep"),
            _s(15, "human", "Refund done, sorry it took a while."),
            _s(16, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must=(_e(STALLED, "reply"),),
        must_not=(_e(STALLED, "requested"), _e(DROPPED), _e(MISSED)),
        states=("resolved",),
        settings={"SLA_AUTO_RESOLVE": False},
        checks=(
            _c(f"flag:{STALLED}", "status", "open"),
            _c("wait:1:reply", "met", False),
            _c("handoff:1", "policy.auto_resolve", False),
        ),
    ),
    Scenario(
        "sms-duplicate-deliveries",
        "sms",
        "Every delivery arrived twice, some under new webhook ids: nothing counted twice",
        (
            _s(0, "customer", "Can I talk to an agent?"),
            _s(0.05, "redeliver"),
            _s(0.1, "ai", "Connecting you now."),
            _s(0.15, "resend"),
            _s(0.2, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.3, "redeliver"),
            _s(0.4, "resend"),
            _s(1, "handoff.assigned", agent="liam.agent"),
            _s(1.1, "resend"),
            _s(2, "human", "Hi, Liam here.", agent="liam.agent"),
            _s(2.5, "redeliver"),
            _s(3, "resend"),
            _s(4, "customer", "Can you change my delivery date to Friday?"),
            _s(4.5, "resend"),
            _s(5, "human", "Done!", agent="liam.agent"),
            _s(5.5, "resend"),
            _s(6, "conversation.resolved"),
            _s(6.5, "redeliver"),
            _s(7, "resend"),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("resolved",),
        checks=(
            # opened (request), assigned, engaged, resolved: one entry each.
            _c("handoff:1", "transitions", 4),
            _c("handoff:1", "ai_replies_after_request", 0),
            _c("conversation", "message_count", 5),
            _c("wait:1:reply", "met", True),
        ),
    ),
    Scenario(
        "sms-one-connecting-message",
        "sms",
        "The AI said it was connecting a colleague, once: allowed, no drop",
        (
            _s(0, "customer", "Cancel my order 8812"),
            _s(0.1, "handoff.requested", data={"reason": "cancellation"}),
            _s(0.2, "ai", "I'm connecting you with a colleague now."),
            _s(1.5, "human", "Hi, I've cancelled order 8812 for you."),
            _s(3, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("resolved",),
        checks=(_c("handoff:1", "ai_replies_after_request", 1),),
    ),
    Scenario(
        "sms-missed-at-close",
        "sms",
        "Asked for someone; the AI answered once and the conversation was closed",
        (
            _s(0, "customer", "Can I talk to someone please?"),
            _s(0.2, "ai", "I can help! What do you need?"),
            _s(5, "conversation.closed"),
            _s(60, "sweep"),
        ),
        must=(_e(MISSED),),
        must_not=(_e(STALLED), _e(DROPPED)),
        checks=(
            _c(f"flag:{MISSED}", "evidence.ai_turns", 1),
            _c(f"flag:{MISSED}", "evidence.why", "closed", "contains"),
        ),
    ),
    Scenario(
        "sms-near-miss-phrases",
        "sms",
        "'This agent was great, talk to you later' is no request for a human",
        (
            _s(0, "customer", "Has my order shipped?"),
            _s(0.1, "ai", "Yes, it ships today!"),
            _s(1, "customer", "Great, this agent was great. Talk to you later!"),
            _s(1.1, "ai", "Happy to help!"),
            _s(1.5, "ai", "Anything else?"),
            _s(5, "conversation.closed"),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
    ),
    # --- e-mail ----------------------------------------------------------------------------
    Scenario(
        "email-on-time",
        "email",
        "Billing picked the request up from its queue within the e-mail SLA",
        (
            _s(0, "customer", "Please have someone from billing check invoice INV-3310."),
            _s(1, "ai", "Thanks! I've passed this to our billing team."),
            _s(2, "handoff.requested", data={"reason": "invoice correction"}),
            _s(5, "handoff.queued", data={"queue": "billing"}),
            _s(120, "handoff.assigned"),
            _s(150, "human", "Hello, the corrected invoice is attached."),
            _s(200, "conversation.resolved"),
            _s(24 * 60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("resolved",),
        checks=(_c("handoff:1", "queue", "billing"), _c("wait:1:queued", "met", True)),
    ),
    Scenario(
        "email-dropped-at-resolve",
        "email",
        "Marked resolved while still queued: no human ever answered",
        (
            _s(0, "customer", "My table arrived with a scratch, I want a replacement."),
            _s(1, "ai", "I'm sorry! A colleague will arrange a replacement."),
            _s(1.1, "handoff.requested", data={"reason": "replacement"}),
            _s(2, "handoff.queued", data={"queue": "claims"}),
            _s(30, "conversation.resolved"),
            _s(24 * 60, "sweep"),
        ),
        must=(_e(DROPPED, "resolved_before_human"),),
        must_not=(_e(DROPPED, "closed_before_human"), _e(STALLED), _e(MISSED)),
        states=("abandoned",),
        checks=(
            _c(
                f"flag:{DROPPED}",
                "evidence.details.resolved_before_human.state_when_ended",
                "queued",
            ),
        ),
    ),
    Scenario(
        "email-holiday",
        "email",
        "Requested on Monday evening before a holiday: the deadline moves to Wednesday",
        (
            _s(0, "customer", "Hello, I'd like to speak to someone about a bulk order."),
            _s(1, "ai", "Thanks! I've passed your request to our sales team."),
            # Monday 17:32 Madrid: 28 business minutes left, Tuesday is a holiday.
            _s(2, "handoff.requested", data={"reason": "bulk order"}),
            # Tuesday 13:00 Madrid: late by the wall clock and without the holiday.
            _s(19.5 * 60, "sweep"),
            _s(39 * 60 + 50, "sweep"),
            # Wednesday 09:25 Madrid: 53 business minutes after the request.
            _s(39 * 60 + 55, "human", "Good morning, Nora from sales here. How many chairs?"),
            _s(44 * 60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("engaged",),
        starts=(1, "16:30"),
        settings=_business_hours("2026-11-17"),
        checks=(
            _c("handoff:1", "time_to_human_business", 53 * 60.0),
            _c("wait:1:requested", "met", True),
        ),
    ),
    Scenario(
        "email-late-in-business-time",
        "email",
        "Requested on Friday evening, answered Monday mid-morning: late by business time only",
        (
            _s(0, "customer", "I need to talk to a person about my warranty claim."),
            _s(5, "ai", "I've asked a colleague to take over."),
            # Friday 17:30 Madrid: 30 business minutes left this week.
            _s(10, "handoff.requested", data={"reason": "warranty"}),
            # Saturday: 20 h by the clock, 30 min of business time.
            _s(19 * 60 + 40, "sweep"),
            # Monday 10:00 Madrid: 90 business minutes.
            _s(64 * 60 + 40, "sweep"),
            _s(64 * 60 + 50, "human", "Good morning, sorry for the wait: let's look at it."),
            _s(65 * 60, "conversation.resolved"),
            _s(70 * 60, "sweep"),
        ),
        must=(_e(STALLED, "requested"),),
        must_not=(_e(DROPPED), _e(MISSED)),
        states=("resolved",),
        starts=(5, "16:20"),
        settings=_business_hours(),
        checks=(
            _c(f"flag:{STALLED}", "evidence.waited_seconds", 5400.0),
            _c(f"flag:{STALLED}", "evidence.over_by_seconds", 1800.0),
            _c(f"flag:{STALLED}", "evidence.business_hours", True),
            _c(f"flag:{STALLED}", "status", "resolved"),
            _c("handoff:1", "time_to_human_business", 100 * 60.0),
        ),
    ),
    Scenario(
        "email-human-only",
        "email",
        "A customer and an agent, no AI anywhere: nothing to hand off",
        (
            _s(0, "customer", "Hello, please send me a copy of my receipt for order 9001."),
            _s(60, "human", "Hi, here is your receipt."),
            _s(90, "customer", "Thanks!"),
            _s(120, "conversation.closed"),
            _s(24 * 60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=(),
    ),
    Scenario(
        "email-two-handoffs-after-resolve",
        "email",
        "A delivery booked by a human and resolved; three days later a second handoff",
        (
            _s(0, "customer", "I want to speak to a person about my kitchen delivery."),
            _s(1, "ai", "I've asked our delivery team to get in touch."),
            _s(1.5, "handoff.requested", data={"reason": "delivery booking"}),
            _s(2, "handoff.queued", data={"queue": "delivery"}),
            _s(60, "human", "Hi, Ola from delivery. Does Thursday 9-12 work?", agent="ola.agent"),
            _s(90, "customer", "Thursday is fine."),
            _s(120, "human", "Booked!", agent="ola.agent"),
            _s(130, "conversation.resolved"),
            _s(3 * 24 * 60, "customer", "A cabinet door is missing, can I speak to someone?"),
            _s(3 * 24 * 60 + 1, "ai", "Sorry about that! I'm passing this to the team."),
            _s(3 * 24 * 60 + 2, "handoff.requested", data={"reason": "missing part"}),
            _s(3 * 24 * 60 + 3, "handoff.queued", data={"queue": "delivery"}),
            _s(3 * 24 * 60 + 80, "human", "We'll ship the door tomorrow.", agent="ola.agent"),
            _s(4 * 24 * 60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("resolved", "engaged"),
        checks=(_c("handoff:1", "agent_id", "ola.agent"), _c("wait:1:reply", "met", True)),
    ),
    # --- web -------------------------------------------------------------------------------
    *(
        Scenario(
            f"web-queue-{queue}",
            "web",
            title,
            (
                _s(0, "customer", "I'm a VIP member and my sofa order is missing a cushion"),
                _s(0.2, "ai", "Let me get you our VIP team."),
                _s(0.3, "handoff.requested", data={"reason": "missing part"}),
                _s(0.5, "handoff.queued", data={"queue": queue}),
                _s(2.5, "sweep"),
                _s(3, "human", "Hello, VIP team here: a cushion ships today."),
                _s(5, "conversation.resolved"),
                _s(60, "sweep"),
            ),
            must=must,
            must_not=must_not,
            states=("resolved",),
            policies=(VIP_POLICY,),
            checks=checks,
        )
        for queue, title, must, must_not, checks in (
            (
                "vip",
                "The VIP queue's own SLA (1 minute) was missed",
                (_e(STALLED, "queued"),),
                (_e(DROPPED), _e(MISSED)),
                (
                    _c(f"flag:{STALLED}", "evidence.policy.name", "Web VIP queue"),
                    _c(f"flag:{STALLED}", "evidence.allowed_seconds", 60.0),
                ),
            ),
            (
                "tier1",
                "The same wait in the ordinary queue is within the channel's default SLA",
                (),
                NO_FLAGS,
                (_c("handoff:1", "policy.name", "default (web)"),),
            ),
        )
    ),
    Scenario(
        "web-ask-then-request-in-time",
        "web",
        "Asked for a human; the AI asked one question, then requested one: no miss",
        (
            _s(0, "customer", "Can I chat with a human?"),
            _s(0.2, "ai", "Sure! One question first: what's your order number?"),
            _s(0.5, "customer", "#5521"),
            _s(0.6, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.7, "handoff.queued"),
            _s(2, "human", "Hi, Nora here, I have your order open."),
            _s(4, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("resolved",),
    ),
    Scenario(
        "web-human-reply-delivered-late",
        "web",
        "The agent replied in time but the platform reported it late, after its status reports",
        (
            _s(0, "customer", "I need to talk to an agent about a missing part"),
            _s(0.1, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.2, "ai", "Connecting you now."),
            _s(0.3, "handoff.queued"),
            _s(2, "message.status", "delivered", occurred=1.4, of=8),
            _s(3, "message.status", "read", occurred=2.5, of=8),
            _s(6, "sweep"),  # the sweep has not heard of the reply: stalled
            _s(7, "human", "Hi, Nora here: the part ships today.", occurred=1.2),
            _s(8, "customer", "Great, thanks"),
            _s(9, "human", "You're welcome!"),
            _s(10, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must=(_e(STALLED, "queued"),),
        must_not=(_e(DROPPED), _e(MISSED)),
        states=("resolved",),
        checks=(
            _c("handoff:1", "time_to_human", 66.0),
            _c("wait:1:queued", "met", True),
            _c(f"flag:{STALLED}", "status", "resolved"),
            _c("message:8", "status", "read"),
        ),
    ),
    Scenario(
        "web-late-reply-engaged",
        "web",
        "Engaged on time, then the customer's next question waited past the reply limit",
        (
            _s(0, "customer", "Talk to a human please"),
            _s(0.1, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.5, "handoff.assigned"),
            _s(1, "human", "Hi! Nora here."),
            _s(2, "customer", "My invoice shows the wrong address"),
            _s(8, "sweep"),
            _s(9, "human", "Fixed, sorry for the wait."),
            _s(10, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must=(_e(STALLED, "reply"),),
        must_not=(_e(STALLED, "assigned"), _e(DROPPED), _e(MISSED)),
        states=("resolved",),
        checks=(
            _c(f"flag:{STALLED}", "status", "resolved"),
            _c(f"flag:{STALLED}", "note", "a human replied", "contains"),
            _c("wait:1:reply", "met", False),
            _c("wait:1:assigned", "met", True),
        ),
    ),
    Scenario(
        "web-engaged-batch-resent",
        "web",
        "Engaged; two customer messages and a late human reply came in one batch, then the "
        "same batch again under a new delivery id",
        (
            _s(0, "customer", "Can a person help me with a refund?"),
            _s(0.1, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.5, "handoff.assigned"),
            _s(1, "human", "Hi! Nora here, happy to help."),
            _s(9, "customer", "It's order 7781", occurred=2, batch=1),
            _s(9, "customer", "The refund never arrived", occurred=2 + 10 / 60, batch=1),
            _s(9, "human", "Found it: the refund leaves today.", occurred=1 + 410 / 60,
               batch=1),
            _s(10, "resend"),
            _s(60, "sweep"),
        ),
        must=(_e(STALLED, "reply"),),
        must_not=(_e(STALLED, "assigned"), _e(DROPPED), _e(MISSED)),
        states=("engaged",),
        checks=(
            _c(f"flag:{STALLED}", "count", 1),
            _c(f"flag:{STALLED}", "status", "resolved"),
            _c(f"flag:{STALLED}", "evidence.waited_seconds", 350),
            _c("wait:1:reply", "met", False),
        ),
    ),
    Scenario(
        "web-takeover-then-late-request",
        "web",
        "An agent replied; the AI's earlier request for a human was delivered after the reply",
        (
            _s(0, "customer", "Where is my order?"),
            _s(0.1, "ai", "Let me check that for you."),
            _s(1, "human", "Hi, Nora here: it left the warehouse this morning."),
            _s(2, "handoff.requested", occurred=0.5, data={"reason": "tracking tool down"}),
            _s(3, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("resolved",),
        checks=(
            _c("handoff:1", "requested_by", "ai"),
            _c("handoff:1", "time_to_human", 30.0),
        ),
    ),
    Scenario(
        "web-reply-overtaken-by-return",
        "web",
        "The agent's reply was delivered after the handoff had gone back to the AI",
        (
            _s(0, "customer", "Talk to an agent"),
            _s(0.1, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.2, "handoff.queued"),
            _s(3, "handoff.returned", data={"reason": "no agent free"}),
            _s(4, "human", "Hi, Nora here.", occurred=2),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("returned",),
        checks=(
            # Every event is kept in the log, applied or not: the late reply too.
            _c("handoff:1", "transitions", 4),
        ),
    ),
    Scenario(
        "web-reassigned",
        "web",
        "Assigned to Nora, reassigned to Liam, who answered in time",
        (
            _s(0, "customer", "Talk to an agent"),
            _s(0.1, "handoff.requested", data={"requested_by": "customer"}),
            _s(0.3, "handoff.queued"),
            _s(1, "handoff.assigned"),
            _s(1.5, "handoff.assigned", agent="liam.agent"),
            _s(2.5, "human", "Hi, Liam here.", agent="liam.agent"),
            _s(4, "conversation.resolved"),
            _s(60, "sweep"),
        ),
        must_not=NO_FLAGS,
        states=("resolved",),
        checks=(_c("handoff:1", "agent_id", "liam.agent"), _c("handoff:1", "transitions", 6)),
    ),
)


def scenario_get(key: str) -> Scenario:
    return next(s for s in SCENARIOS if s.key == key)
