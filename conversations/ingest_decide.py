"""Decide: what a batch of normalized events does, as a plan of rows. Pure Python.

    IngestState (ingest_load) + events, in order ──decide()──▶ Plan ──▶ a writer (ingest_write)

Each ingest rule exists here once, for every database and batch size (a single event is a
batch of one). No database, no model instances: the state is what ingest_load read, the
plan names rows this batch adds by negative references (-1, -2, ...), which the writer
turns into ids. Rules, as events are walked in order:

- a message is found by (provider, provider message id), recorded or earlier in the batch:
  found again, nothing changes; otherwise it lands in its thread (e-mail: by Message-ID
  keys, then subject within EMAIL_THREAD_WINDOW_HOURS; others: the open thread of channel,
  business and customer addresses, opened if none), with its author's participant (added,
  or renamed to a new non-empty display name);
- a new message joins the status reports waiting for it (by rank, time, arrival), and a
  new AI message (e-mail: any outbound) links the AI steps waiting for it;
- a status report is kept once per (provider, message id, provider status); it moves its
  message only forward (first of equal ranks stays), or waits for it;
- AI steps and outcomes: the last report of an id wins; lifecycle events: the first;
- a newly kept `conversation.closed` closes its thread and ends a segment: the writer
  writes segments in order, so the customer's next message opens a new thread; a message
  dated at or before the close, however late it arrives, still lands in the closed thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .events import (
    AIStepEvent,
    ConversationRef,
    IdentifyEvent,
    LifecycleEvent,
    MessageEvent,
    NormalizationError,
    NormalizedEvent,
    OutcomeEvent,
    StatusEvent,
)
from .ingest_customers import CustomerLinker, CustomerPlan, identify_identities
from .ingest_quality import FlagRow, QualityConfig, QualityDecider
from .ingest_state import IngestState, QualityContext, email_pair, ref_triple
from .models import STATUS_RANK, AuthorKind, Channel, DeliveryStatus, Direction

Key = tuple[str, str]  # provider, provider message id
Status = tuple[str, int, Any, str]  # status, rank, status_at, error_code
CLOSED = "conversation.closed"
HANDOFF_REQUESTED = "handoff.requested"


def message_author_id(event: MessageEvent) -> str:
    """The external id of a message's participant: the author's id, else the customer's
    address for a customer, else the author kind (one participant per kind)."""
    return event.author_id or (
        event.customer_address if event.author_kind == AuthorKind.CUSTOMER else event.author_kind
    )


def message_initial_status(event: MessageEvent) -> str:
    """A new message's status: as reported, else received (inbound) or unknown."""
    return event.status or (
        DeliveryStatus.RECEIVED if event.direction == Direction.INBOUND
        else DeliveryStatus.UNKNOWN
    )


def status_fold(state: Status, reports: Sequence[tuple[str, Any, str]]) -> Status:
    """A message's status after reports (status, at, error code) in order: only a higher
    rank moves it (the first of equal ranks stays); an error code comes with the report
    that moved it, when it has one."""
    status, rank, at, code = state
    for report_status, report_at, report_code in reports:
        report_rank = STATUS_RANK.get(report_status, 0)
        if report_rank > rank:
            status, rank, at = report_status, report_rank, report_at
            code = report_code or code
    return status, rank, at, code


# --- the plan ----------------------------------------------------------------------------


@dataclass
class Thread:
    """A conversation this plan opens (ref < 0)."""

    ref: int
    channel: str
    business_address: str
    customer_address: str
    started_at: datetime
    subject: str = ""


@dataclass
class NewParticipant:
    ref: int
    conversation: int
    kind: str
    external_id: str
    display_name: str
    metadata: dict[str, Any]


@dataclass
class NewMessage:
    """`values`: the Message columns by attname; conversation_id and participant_id are refs."""

    ref: int
    values: dict[str, Any]


@dataclass
class Segment:
    """Rows to write, in this order, before the next segment (see the module docstring)."""

    threads: list[Thread] = field(default_factory=list)
    keys: dict[str, int] = field(default_factory=dict)  # key -> conversation
    participants: list[NewParticipant] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    step_links: list[Key] = field(default_factory=list)  # stored AI steps waiting for these
    # status rows: the MessageStatusEvent columns; message_id a message ref or None.
    reports: list[dict[str, Any]] = field(default_factory=list)
    # stored waiting reports (provider, id, provider status) now joined to a message ref
    report_joins: list[tuple[str, str, str, int]] = field(default_factory=list)
    steps: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    lifecycle: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    closes: list[tuple[int, str, datetime]] = field(default_factory=list)  # ref, event id, at


@dataclass
class Plan:
    segments: list[Segment]
    advances: dict[int, Status]  # messages recorded before: moved forward to this
    renames: dict[int, str]  # participants recorded before: their new display name
    # Per message.created event, its message (ref or id); per lifecycle event, its row:
    # ("new", (conversation ref, external id)) or ("id", id).
    messages: list[int]
    lifecycle: list[tuple[str, Any]]
    conversations: set[int]  # refs or ids of every conversation the batch touched
    join_after_commit: set[Key]  # reports whose message may be committing concurrently
    # Customers across channels (ingest_customers): written after the segments.
    customers: CustomerPlan = field(default_factory=CustomerPlan)
    flags: list[FlagRow] = field(default_factory=list)  # answer quality (ingest_quality)


@dataclass
class _Message:
    ref: int
    conversation: int
    status: Status
    new: NewMessage | None = None  # this batch's row


@dataclass
class _EmailThread:
    ref: int
    subject: str
    last_at: datetime
    order: int


# --- deciding -----------------------------------------------------------------------------


def decide(state: IngestState, events: Sequence[NormalizedEvent], *,
           raw_event_id: int | None, now: datetime, window_hours: float,
           quality: QualityConfig | None = None) -> Plan:
    """The plan for `events` applied in order over `state` (see the module docstring).
    `raw_event_id`: the source of events that do not name their own; `quality`: the
    answer-quality checks' thresholds (None: no checks)."""
    return _Decider(state, raw_event_id, now, window_hours, quality).run(events)


class _Decider:
    def __init__(self, state: IngestState, raw_event_id: int | None, now: datetime,
                 window_hours: float, quality: QualityConfig | None = None) -> None:
        self.quality = (QualityDecider(state.quality or QualityContext(), quality)
                        if quality is not None else None)
        self.raw_event_id = raw_event_id
        self.now = now
        self.window = timedelta(hours=window_hours)
        self.next_ref = -1
        self.keys = dict(state.keys)
        self.open = dict(state.open_threads)
        self.closed = dict(state.closed_threads)
        self.messages = {k: _Message(m.id, m.conversation_id,
                                     (m.status, m.status_rank, m.status_at, m.error_code))
                         for k, m in state.messages.items()}
        self.participants: dict[tuple[int, str, str], tuple[int, str]] = dict(
            state.participants)
        self.new_participants: dict[int, NewParticipant] = {}
        self.reports_kept = set(state.reports)
        # Reports waiting for their message: stored ones, and this batch's (segment, row).
        # (status, at, error code, arrival, provider status, segment: None if stored)
        self.waiting: dict[Key, list[tuple[str, Any, str, tuple[int, int], str, int | None]]] = {}
        for (provider, pmid, provider_status), r in sorted(
                state.reports.items(), key=lambda kv: kv[1].id):
            if r.waiting:
                self.waiting.setdefault((provider, pmid), []).append(
                    (r.status, r.occurred_at, r.error_code, (0, r.id), provider_status, None))
        self.waiting_rows: dict[Key, list[tuple[int, dict[str, Any]]]] = {}
        self.waiting_steps: dict[Key, list[tuple[int, dict[str, Any]]]] = {}
        self.lifecycle_known: dict[tuple[int, str], tuple[str, Any]] = {
            k: ("id", pk) for k, pk in state.lifecycle.items()}
        self.email: dict[tuple[str, str], list[_EmailThread]] = {
            pair: [_EmailThread(c.id, c.subject, c.last_activity_at, c.id) for c in threads]
            for pair, threads in state.email_threads.items()}
        self.segments = [Segment()]
        self.plan = Plan(self.segments, {}, {}, [], [], set(), set())
        self.customers = CustomerLinker(state.identities, state.conversation_customers,
                                        self.ref)
        self.plan.customers = self.customers.plan
        self.position = 0

    @property
    def segment(self) -> Segment:
        return self.segments[-1]

    def ref(self) -> int:
        self.next_ref -= 1
        return self.next_ref + 1

    def raw_id(self, event: NormalizedEvent) -> int | None:
        return event.raw_event_id if event.raw_event_id is not None else self.raw_event_id

    def run(self, events: Sequence[NormalizedEvent]) -> Plan:
        for self.position, event in enumerate(events):
            if isinstance(event, MessageEvent):
                self.message(event)
            elif isinstance(event, StatusEvent):
                self.status(event)
            elif isinstance(event, AIStepEvent):
                self.step(event)
            elif isinstance(event, LifecycleEvent):
                self.lifecycle(event)
            elif isinstance(event, OutcomeEvent):
                self.outcome(event)
            elif isinstance(event, IdentifyEvent):
                self.identify(event)
            else:  # pragma: no cover - a new event type without a rule
                raise TypeError(f"unhandled event {type(event).__name__}")
        for m in self.messages.values():  # new rows are written with their final status
            if m.new is not None:
                v = m.new.values
                v["status"], v["status_rank"], v["status_at"], v["error_code"] = m.status
        if self.quality is not None:
            self.plan.flags = self.quality.flags({k: m.ref for k, m in self.messages.items()})
        return self.plan

    # -- conversations ---------------------------------------------------------------

    def thread_open(self, channel: str, business: str, customer: str, at: datetime,
                    subject: str = "") -> int:
        ref = self.ref()
        self.segment.threads.append(Thread(ref, channel, business, customer, at, subject))
        self.customers.thread_opened(ref, channel, customer)
        return ref

    def thread(self, triple: tuple[str, str, str], at: datetime) -> int:
        """The open thread of (channel, business, customer), opened if none; but what is
        dated at or before the close of the latest closed thread belongs to that thread,
        whenever it arrives. E-mail is never "the customer's open thread": each call
        opens one."""
        closed = self.closed.get(triple)
        if closed is not None and at <= closed[1]:
            return closed[0]
        ref = self.open.get(triple)
        if ref is None:
            ref = self.thread_open(*triple, at)
            if triple[0] != Channel.EMAIL:
                self.open[triple] = ref
        return ref

    def key_add(self, key: str, conversation: int) -> None:
        """A name for a conversation; a name taken keeps its conversation."""
        if key not in self.keys:
            self.keys[key] = self.segment.keys[key] = conversation

    def resolve(self, ref: ConversationRef, at: datetime) -> int:
        """By external id first, else the open thread of the addresses (opened if none;
        named by the external id alone, that id stands for the customer)."""
        key = f"events:{ref.external_id}" if ref.external_id else ""
        trace = f"trace:{ref.trace_id}" if ref.trace_id else ""
        if key in self.keys:
            conversation = self.keys[key]
        elif not key and trace in self.keys:  # a span of a trace another span placed
            return self.keys[trace]
        elif not ref.customer_address and not key:
            raise NormalizationError(
                "the event names no conversation (external_id or addresses"
                + (", nor did another span of its trace yet)" if trace else ")"))
        else:
            conversation = self.thread(ref_triple(ref), at)
            if key:
                self.key_add(key, conversation)
        if trace:
            self.key_add(trace, conversation)
        return conversation

    def email_thread(self, event: MessageEvent) -> int:
        """By key: the message's own Message-ID (a reply that came first registered it),
        then In-Reply-To and References; else the customer's open thread on this mailbox
        with the same normalized subject, active within the window; else a new one."""
        for i in (event.provider_message_id, *event.references):
            if i and f"email:{i}" in self.keys:
                return self.keys[f"email:{i}"]
        pair = (event.business_address, event.customer_address)
        subject = event.thread_subject[:998].upper()  # as stored: a longer one never matched
        at = event.occurred_at
        matches = [t for t in self.email.get(pair, ())
                   if t.subject.upper() == subject and abs(t.last_at - at) <= self.window]
        if matches:
            return max(matches, key=lambda t: (t.last_at, t.order)).ref
        return self.email_open(pair, at, event.thread_subject[:998])

    def email_open(self, pair: tuple[str, str], at: datetime, subject: str) -> int:
        ref = self.thread_open(Channel.EMAIL, *pair, at, subject)
        self.email.setdefault(pair, []).append(_EmailThread(ref, subject, at, (1 << 62) - ref))
        return ref

    def touch(self, conversation: int, at: datetime) -> None:
        self.plan.conversations.add(conversation)
        for threads in self.email.values():  # e-mail threads move in the subject window
            for t in threads:
                if t.ref == conversation and t.last_at < at:
                    t.last_at = at

    # -- messages --------------------------------------------------------------------

    def message(self, event: MessageEvent) -> None:
        key = (event.provider, event.provider_message_id) if event.provider_message_id else None
        found = self.messages.get(key) if key else None
        if found is not None:  # found again: nothing changes
            self.plan.messages.append(found.ref)
            self.plan.conversations.add(found.conversation)
            return
        if event.channel == Channel.EMAIL:
            external = (f"events:{event.conversation_external_id}"
                        if event.conversation_external_id else "")
            conversation = self.keys.get(external) if external else None
            if conversation is None:
                conversation = self.email_thread(event)
            for i in (event.provider_message_id, *event.references):
                if i:
                    self.key_add(f"email:{i}"[:512], conversation)
            if external:
                self.key_add(external, conversation)
            links = event.direction == Direction.OUTBOUND  # often sent by a person from a draft
        else:
            conversation = self.thread(
                (event.channel, event.business_address, event.customer_address),
                event.occurred_at)
            if event.conversation_external_id:
                self.key_add(f"events:{event.conversation_external_id}", conversation)
            links = event.author_kind == AuthorKind.AI
        self.message_add(event, conversation, key, links)
        if event.author_kind == AuthorKind.CUSTOMER and event.author_name:
            self.customers.named(conversation, event.author_name)

    def participant(self, conversation: int, event: MessageEvent) -> int:
        key = (conversation, event.author_kind, message_author_id(event))
        found = self.participants.get(key)
        if found is None:
            ref = self.ref()
            new = NewParticipant(ref, conversation, key[1], key[2], event.author_name,
                                 event.author_metadata or {})
            self.segment.participants.append(new)
            self.new_participants[ref] = new
            self.participants[key] = (ref, event.author_name)
            return ref
        ref, name = found
        if event.author_name and event.author_name != name:  # WhatsApp profile names change
            self.participants[key] = (ref, event.author_name)
            if ref < 0:
                self.new_participants[ref].display_name = event.author_name
            else:
                self.plan.renames[ref] = event.author_name
        return ref

    def message_add(self, event: MessageEvent, conversation: int, key: Key | None,
                    links_steps: bool) -> None:
        status = message_initial_status(event)
        values = {
            "conversation_id": conversation,
            "participant_id": self.participant(conversation, event),
            "direction": event.direction,
            "author_kind": event.author_kind,
            "body": event.body,
            "body_new": event.body_new,
            "subject": event.subject[:998],
            "provider": event.provider,
            # "" is no id: two such messages must not collide on the unique index.
            "provider_message_id": event.provider_message_id or None,
            "sent_at": event.occurred_at,
            "status": status,
            "status_rank": STATUS_RANK.get(status, 0),
            "status_at": event.occurred_at,
            "error_code": "",
            "num_segments": event.num_segments,
            "media": event.media,
            "metadata": event.metadata,
            "raw_event_id": self.raw_id(event),
            "created_at": self.now,
            "purged_at": None,
        }
        new = NewMessage(self.ref(), values)
        self.segment.messages.append(new)
        if self.quality is not None:
            self.quality.message(conversation, new.ref, author_kind=event.author_kind,
                                 text=event.body_new or event.body, at=event.occurred_at,
                                 key=key, business=event.business_address,
                                 position=self.position)
        state: Status = (status, values["status_rank"], event.occurred_at, "")
        self.touch(conversation, event.occurred_at)
        self.plan.messages.append(new.ref)
        if key is not None:
            # Reports that came first join, by rank, time, then arrival.
            waited = sorted(self.waiting.pop(key, []),
                            key=lambda r: (STATUS_RANK.get(r[0], 0), r[1], r[3]))
            state = status_fold(state, [r[:3] for r in waited])
            here = len(self.segments) - 1
            for segment, row in self.waiting_rows.pop(key, []):
                if segment == here:  # not written yet: written joined
                    row["message_id"], row["conversation_id"] = new.ref, conversation
            self.segment.report_joins.extend(
                (key[0], key[1], provider_status, new.ref)
                for provider_status in sorted({r[4] for r in waited if r[5] != here}))
            if links_steps:
                self.segment.step_links.append(key)
                for segment, row in self.waiting_steps.pop(key, []):
                    if segment == here and row["message_id"] is None:
                        row["message_id"] = new.ref
            self.messages[key] = _Message(new.ref, conversation, state, new)

    # -- status reports --------------------------------------------------------------

    def status(self, event: StatusEvent) -> None:
        key = (event.provider, event.provider_message_id)
        message = self.messages.get(key)
        kept = (*key, event.provider_status)
        if kept not in self.reports_kept:
            self.reports_kept.add(kept)
            row = {
                "message_id": message.ref if message else None,
                "conversation_id": message.conversation if message else None,
                "provider": event.provider, "provider_message_id": event.provider_message_id,
                "status": event.status, "provider_status": event.provider_status,
                "error_code": event.error_code, "error_message": event.error_message,
                "occurred_at": event.occurred_at, "raw_event_id": self.raw_id(event),
                "metadata": event.metadata or {},
            }
            self.segment.reports.append(row)
            if message is None:
                here = len(self.segments) - 1
                self.waiting.setdefault(key, []).append(
                    (event.status, event.occurred_at, event.error_code, (1, self.position),
                     event.provider_status, here))
                self.waiting_rows.setdefault(key, []).append((here, row))
        if message is None:  # its message may be committing concurrently
            self.plan.join_after_commit.add(key)
            return
        moved = status_fold(message.status, [(event.status, event.occurred_at,
                                              event.error_code)])
        if moved != message.status:
            message.status = moved
            if message.new is None:
                self.plan.advances[message.ref] = moved

    # -- the rest of the journey -----------------------------------------------------

    def step(self, event: AIStepEvent) -> None:
        provider = event.message_provider or "events"
        key = (provider, event.message_provider_id) if event.message_provider_id else None
        message = self.messages.get(key) if key else None
        if event.conversation.channel == Channel.EMAIL:
            conversation = self.email_step_thread(event, message)
        else:
            conversation = self.resolve(event.conversation, event.occurred_at)
        row = {
            **event.fields,
            "conversation_id": conversation, "external_id": event.external_id,
            "occurred_at": event.occurred_at, "operation": event.operation,
            "message_id": message.ref if message else None,
            "message_provider": provider, "message_provider_id": event.message_provider_id,
            "raw_event_id": self.raw_id(event),
        }
        self.segment.steps[(conversation, event.external_id)] = row  # the last report wins
        self.plan.conversations.add(conversation)
        if self.quality is not None:
            self.quality.step(conversation, row, event.conversation.business_address)
        if message is None and key is not None:
            self.waiting_steps.setdefault(key, []).append((len(self.segments) - 1, row))

    def email_step_thread(self, event: AIStepEvent, message: _Message | None) -> int:
        """The message the step produced pins its thread; else a Message-ID or external id
        registered already; else the customer's latest open thread on that mailbox; else a
        new one. The step registers its keys, so the e-mail threads there when it comes."""
        ref = event.conversation
        keys = ([f"email:{event.message_provider_id}"]
                if event.message_provider == "email" else [])
        if ref.external_id:
            keys.append(f"events:{ref.external_id}")
        named = next((self.keys[k] for k in keys if k in self.keys), None)
        if message is not None:
            conversation = message.conversation
        elif named is not None:
            conversation = named
        else:
            pair = email_pair(ref)
            threads = self.email.get(pair)
            if threads:
                conversation = max(threads, key=lambda t: (t.last_at, t.order)).ref
            else:
                conversation = self.email_open(pair, event.occurred_at, "")
        for key in keys:
            self.key_add(key[:512], conversation)
        return conversation

    def identify(self, event: IdentifyEvent) -> None:
        conversation = self.resolve(event.conversation, event.occurred_at)
        self.plan.conversations.add(conversation)
        self.customers.identify(conversation, identify_identities(
            phone=event.phone, email=event.email, customer_id=event.customer_id), event.name)

    def outcome(self, event: OutcomeEvent) -> None:
        conversation = self.resolve(event.conversation, event.occurred_at)
        self.segment.outcomes[(conversation, event.external_id)] = {
            **event.fields, "conversation_id": conversation, "external_id": event.external_id,
            "occurred_at": event.occurred_at, "raw_event_id": self.raw_id(event)}
        self.plan.conversations.add(conversation)

    def lifecycle(self, event: LifecycleEvent) -> None:
        conversation = self.resolve(event.conversation, event.occurred_at)
        self.plan.conversations.add(conversation)
        key = (conversation, event.external_id)
        known = self.lifecycle_known.get(key)
        if known is not None:  # the first report of an id wins
            self.plan.lifecycle.append(known)
            return
        self.segment.lifecycle[key] = {
            "conversation_id": conversation, "external_id": event.external_id,
            "type": event.type, "occurred_at": event.occurred_at,
            "actor_kind": event.actor_kind, "actor_id": event.actor_id,
            "actor_name": event.actor_name, "data": event.data,
            "raw_event_id": self.raw_id(event)}
        self.lifecycle_known[key] = ("new", key)
        self.plan.lifecycle.append(("new", key))
        if self.quality is not None and event.type == HANDOFF_REQUESTED:
            self.quality.handoff(conversation, event.occurred_at)
        if event.type == CLOSED:
            self.segment.closes.append((conversation, event.external_id, event.occurred_at))
            for triple, ref in list(self.open.items()):
                if ref == conversation:
                    del self.open[triple]
                    self.closed[triple] = (conversation, event.occurred_at)
            for threads in self.email.values():
                threads[:] = [t for t in threads if t.ref != conversation]
            self.segments.append(Segment())
