"""How a handoff scenario is written, played and verified (the library itself is
demo/scenarios.py): scripted journeys on all four channels, each with the flags
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
# The scenarios' customers: realistic names (and e-mail addresses made from them), picked
# from the scenario's key, so the same scenario is always the same person.
CUSTOMER_NAMES = (
    "Maria Garcia", "James Okafor", "Sofia Rossi", "Liam O'Brien", "Aisha Khan",
    "Lucas Martin", "Hannah Schmidt", "Mateo Fernandez", "Chloe Dubois", "Noah Williams",
    "Yuki Tanaka", "Amara Nwosu", "Elena Popescu", "Daniel Cohen", "Fatima Haddad",
    "Oliver Brown", "Priya Sharma", "Lars Nielsen", "Ana Souza", "Tom Becker",
    "Grace Lee", "Omar Farouk", "Isabel Costa", "Jonas Weber", "Nora Lindqvist",
    "Samuel Mensah", "Clara Jansen", "Diego Alvarez", "Mei Chen", "Ethan Murphy",
    "Leila Rahimi", "Marco Bianchi", "Zoe Papadopoulos", "Ravi Patel", "Ingrid Berg",
    "Kwame Asante", "Julia Novak", "Hugo Lefebvre", "Sara Lindberg", "Ben Carter",
    "Alina Kowalska", "Tariq Aziz", "Emma Visser", "Carlos Mendes", "Ivy Nguyen",
    "Felix Wagner", "Rosa Moreno", "Adam Horvath", "Lina Haddad", "Victor Petrov",
    "Nadia Benali", "Paul Schneider", "Hana Sato", "Erik Johansson", "Lucia Romano",
    "Ahmed Said", "Eva Kralova", "Jack Wilson", "Mira Shah", "Owen Davies", "Ines Pereira",
)
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


def _digits(scenario: Scenario) -> int:
    # Deterministic across processes (hash() of a str is salted per process).
    return sum(ord(c) * (i + 1) for i, c in enumerate(scenario.key)) % 10000


def scenario_customer_name(scenario: Scenario) -> str:
    return CUSTOMER_NAMES[_digits(scenario) % len(CUSTOMER_NAMES)]


def scenario_customer(scenario: Scenario) -> str:
    digits = _digits(scenario)
    email = scenario_customer_name(scenario).lower().replace("'", "").replace(" ", ".")
    return {
        "whatsapp": f"whatsapp:+1415556{digits:04d}",
        "sms": f"+1415556{digits:04d}",
        "email": f"{email}@mail.example",
        "web": f"visitor-{digits:04d}",
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
                "name": scenario_customer_name(scenario),
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


# --- writing scenarios (demo/scenarios.py, demo/scenarios_more.py) ----------------------


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
