"""Writes. Every row here is derived from a RawEvent, so re-applying one changes nothing.

Webhooks only store raw events (conversations.raw_events); the applier
(conversations.applier) claims them in batches and, for each, calls the normalizer its
adapter registered here and `events_apply`, which records messages, statuses, AI steps,
outcomes and lifecycle events and tells the handoff machine (journey_recorded) inside the
same transaction. Hot statements are fixed SQL run through conversations.sql.Statements.
"""

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from typing import Any

from django.db import (
    IntegrityError,
    connection,
    models,
    transaction,
)
from django.db.models import Case, Min, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import batch  # set-based batches; it uses this module in turn
from .conf import auditor_settings
from .events import (
    AIStepEvent,
    ConversationRef,
    LifecycleEvent,
    MessageEvent,
    NormalizationError,
    NormalizedEvent,
    OutcomeEvent,
    StatusEvent,
)
from .models import (
    FLAG_SEVERITY_RANK,
    STATUS_RANK,
    AIStep,
    AuthorKind,
    Channel,
    Conversation,
    ConversationEvent,
    ConversationKey,
    DashboardDirtyDay,
    DeliveryStatus,
    Direction,
    Flag,
    Message,
    MessageStatusEvent,
    Outcome,
    Participant,
    RawEvent,
)
from .signals import journey_recorded, message_recorded
from .sql import Statements, db_value

logger = logging.getLogger(__name__)

Normalizer = Callable[[RawEvent], list[NormalizedEvent]]
_NORMALIZERS: dict[tuple[str, str], Normalizer] = {}


def normalizer_register(*, provider: str, kind: str, normalizer: Normalizer) -> None:
    """Adapters register how to turn their raw events into normalized events (in ready()).

    The registry is what lets `reprocess_events` rebuild history without this app
    importing the adapters.
    """
    _NORMALIZERS[(provider, kind)] = normalizer


def raw_event_id_of(event: NormalizedEvent, raw_event: RawEvent | None) -> int | None:
    """The raw event an event came from: its own (the applier's batches), else the caller's."""
    if event.raw_event_id is not None:
        return event.raw_event_id
    return raw_event.pk if raw_event is not None else None


def normalizer_get(*, provider: str, kind: str) -> Normalizer:
    try:
        return _NORMALIZERS[(provider, kind)]
    except KeyError:
        raise NormalizationError(f"no normalizer registered for {provider}/{kind}") from None


_CONVERSATION = Conversation._meta.db_table
_PARTICIPANT = Participant._meta.db_table
_MESSAGE = Message._meta.db_table

# --- conversations and messages ---------------------------------------------------------


_CONVERSATION_LOCK = f"SELECT id FROM {_CONVERSATION} WHERE id = %s FOR UPDATE"


def _conversations_lock_in_order(events: list[NormalizedEvent]) -> None:
    """A batch that touches several conversations takes their rows in one global order
    (sorted by channel and addresses) before applying anything, so two concurrent batches
    queue behind each other instead of deadlocking on opposite orders. SQLite serializes
    writers anyway (IMMEDIATE transactions)."""
    if connection.vendor != "postgresql":
        return
    first_seen: dict[tuple[str, str, str], datetime] = {}
    for event in events:
        if isinstance(event, MessageEvent) and event.channel != "email":
            key = (event.channel, event.business_address, event.customer_address)
            first_seen[key] = min(first_seen.get(key, event.occurred_at), event.occurred_at)
    if len(first_seen) < 2:
        return
    with Statements() as sql:
        for (channel, business_address, customer_address), at in sorted(first_seen.items()):
            conversation_id = _conversation_open_id(
                sql, channel=channel, business_address=business_address,
                customer_address=customer_address, at=at,
            )
            sql.run(_CONVERSATION_LOCK, [conversation_id])


def events_apply(*, events: Iterable[NormalizedEvent], raw_event: RawEvent | None = None) -> None:
    """Apply normalized events in order, then tell the other apps (journey_recorded) which
    messages and conversation events the batch holds, inside the same transaction.

    On PostgreSQL a batch (more than one event, no e-mail) is applied set-based, a few
    statements per table for the whole batch (conversations.batch); otherwise event by
    event. Both give the same rows.
    """
    with dashboard_days_collected():
        _events_apply(list(events), raw_event)


def _events_apply(events: list[NormalizedEvent], raw_event: RawEvent | None) -> None:
    if batch.batch_applicable(events):
        with Statements() as sql:
            result = batch.batch_apply(sql, events=events, raw_event=raw_event)
        messages, conversation_events = result.messages, result.conversation_events
        if result.join_after_commit:
            pairs = sorted(result.join_after_commit)
            transaction.on_commit(
                lambda: message_statuses_join_many(pairs=pairs), robust=True)
        if result.new_message_ids:
            new_ids = list(result.new_message_ids)

            def recorded() -> None:
                # Once for the batch: receivers queue work per batch, not per message.
                message_recorded.send(sender=Message, message_id=new_ids[0], message_ids=new_ids)

            transaction.on_commit(recorded, robust=True)
        touched = result.conversation_ids
    else:
        messages, conversation_events, touched = _events_apply_one_by_one(events, raw_event)
    # The machine sees the rows these raw events recorded, not rows found again from an
    # earlier delivery: it saw those when they were recorded, and the state has moved on
    # since (a batch redelivered under a new webhook-id must change nothing).
    sources = {raw_event_id_of(event, raw_event) for event in events}
    fresh = [m for m in messages if m.raw_event_id in sources]
    fresh_events = [e for e in conversation_events if e.raw_event_id in sources]
    if fresh or fresh_events:
        journey_recorded.send(sender=Message, messages=fresh, conversation_events=fresh_events)
    dashboard_days_mark(conversation_ids=touched, moved_by=messages)


def dashboard_days_mark(
    *, conversation_ids: Iterable[int] = (), moments: Iterable[datetime] = (),
    days: Iterable[date] = (), moved_by: Sequence[Message] = (),
) -> None:
    """Mark the dashboard days a batch changed: the start days (site time zone) of
    `conversation_ids` (and, for `moved_by` messages that moved a start back, the day it
    left), the days of `moments` (e.g. handoff requests), and `days`. One look-up and one
    `INSERT … ON CONFLICT DO NOTHING` in day order, inside the caller's transaction, and
    again after commit: the rollup task deletes the marks it takes before reading, so a
    mark that found the row present just before that delete still leaves one behind for
    data committed after the task's snapshot. Inside `dashboard_days_collected` (an ingest
    batch) the marks are gathered and written once when it ends."""
    marks = _days_collecting.get()
    if marks is None:
        marks = _DayMarks()
        marks.add(conversation_ids, moments, days, moved_by)
        marks.write()
    else:
        marks.add(conversation_ids, moments, days, moved_by)


class _DayMarks:
    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.days: set[date] = set()
        self.moved_by: list[Message] = []

    def add(self, ids: Iterable[int], moments: Iterable[datetime], days: Iterable[date],
            moved_by: Sequence[Message]) -> None:
        self.ids.update(ids)
        self.days.update(days)
        self.days.update(timezone.localdate(m) for m in moments)
        self.moved_by.extend(moved_by)

    def write(self) -> None:
        wanted = set(self.days)
        if self.ids:
            rows = Conversation.objects.filter(pk__in=sorted(self.ids)).values_list(
                "pk", "started_at", "message_count")
            starts = {pk: (at, count) for pk, at, count in rows}
            wanted.update(timezone.localdate(at) for at, _ in starts.values())
            wanted.update(_start_days_left(starts, self.moved_by))
        if not wanted:
            return
        ordered = sorted(wanted)  # one statement, in day order: two transactions cannot deadlock

        def mark() -> None:
            now = timezone.now()
            DashboardDirtyDay.objects.bulk_create(
                [DashboardDirtyDay(day=d, marked_at=now) for d in ordered],
                ignore_conflicts=True)

        mark()
        if connection.in_atomic_block:
            transaction.on_commit(mark, robust=True)


# Inside events_apply: every mark of the batch (ingest's, the handoff machine's) is gathered
# here and written once at the end: one look-up, and the day rows' locks in one statement.
_days_collecting: ContextVar[_DayMarks | None] = ContextVar("dashboard_days", default=None)


@contextmanager
def dashboard_days_collected() -> Iterator[None]:
    marks = _DayMarks()
    token = _days_collecting.set(marks)
    try:
        yield
    finally:
        _days_collecting.reset(token)
    marks.write()


def _start_days_left(starts: dict[int, tuple[datetime, int]],
                     messages: Sequence[Message]) -> set[date]:
    """The days conversations started on before a batch's late messages moved their start
    back (a rollup of that day still counts them there). A conversation whose start is now
    one of the batch's messages' times, and which holds messages besides the batch's, may
    have moved: its old start was its earliest other message. One grouped look-up on the
    message timeline index, only for those (a conversation the batch opened has none)."""
    first: dict[int, datetime] = {}
    in_batch: dict[int, set[int]] = {}
    for m in messages:
        first[m.conversation_id] = min(first.get(m.conversation_id, m.sent_at), m.sent_at)
        in_batch.setdefault(m.conversation_id, set()).add(m.pk)
    moved = [cid for cid, at in first.items()
             if cid in starts and starts[cid][0] == at and starts[cid][1] > len(in_batch[cid])]
    if not moved:
        return set()
    earlier = (Message.objects.filter(conversation_id__in=moved)
               .exclude(pk__in=[m.pk for m in messages])
               .values("conversation_id").annotate(first=Min("sent_at")))
    return {day for row in earlier
            if (day := timezone.localdate(row["first"])) != timezone.localdate(
                starts[row["conversation_id"]][0])}


def _events_apply_one_by_one(
    events: list[NormalizedEvent], raw_event: RawEvent | None, *, lock_in_order: bool = True
) -> tuple[list[Message], list[ConversationEvent], set[int]]:
    """The reference semantics: each event applied in order. `lock_in_order` (PostgreSQL):
    first open and lock the threads of the batch's messages in one global order, against
    deadlocks between concurrent multi-event batches; a side effect is that those threads
    are opened with their first message's time even when an earlier event named them
    (tests compare the set-based path with the plain order, lock_in_order=False)."""
    if lock_in_order:
        _conversations_lock_in_order(events)
    messages: list[Message] = []
    conversation_events: list[ConversationEvent] = []
    touched: set[int] = set()  # conversations whose dashboard facts may have changed
    for event in events:
        if isinstance(event, MessageEvent) and event.channel == Channel.EMAIL:
            messages.append(email_message_record(event=event, raw_event=raw_event))
        elif isinstance(event, MessageEvent):
            messages.append(message_record(event=event, raw_event=raw_event))
        elif isinstance(event, StatusEvent):
            message_status_record(event=event, raw_event=raw_event)
        elif isinstance(event, AIStepEvent):
            touched.add(ai_step_record(event=event, raw_event=raw_event).conversation_id)
        elif isinstance(event, LifecycleEvent):
            conversation_events.append(conversation_event_record(event=event, raw_event=raw_event))
        elif isinstance(event, OutcomeEvent):
            touched.add(outcome_record(event=event, raw_event=raw_event).conversation_id)
        else:  # pragma: no cover - a new event type without a handler is a programming error
            raise TypeError(f"unhandled event {type(event).__name__}")
    touched.update(m.conversation_id for m in messages)
    touched.update(e.conversation_id for e in conversation_events)
    return messages, conversation_events, touched


# What message_record needs to know, in one round trip: is the message known already, the
# open thread, and the author's participant in it (LEFT JOINs: NULL where missing).
_MESSAGE_LOOKUP = f"""
    SELECT (SELECT id FROM {_MESSAGE} WHERE provider = %s AND provider_message_id = %s),
           c.id, p.id, p.display_name
    FROM (SELECT 1) AS one
    LEFT JOIN {_CONVERSATION} c
        ON c.channel = %s AND c.business_address = %s AND c.customer_address = %s
        AND c.status = 'open'
    LEFT JOIN {_PARTICIPANT} p
        ON p.conversation_id = c.id AND p.kind = %s AND p.external_id = %s"""

# The conflict targets name the partial unique indexes (conversation_one_open_thread,
# message_provider_id_unique): losing a race there is "nothing inserted", not an error.
_CONVERSATION_OPEN = f"""
    INSERT INTO {_CONVERSATION} (channel, business_address, customer_address, status, subject,
                                 started_at, last_activity_at, message_count, metadata,
                                 created_at)
    VALUES (%s, %s, %s, 'open', '', %s, %s, 0, %s, %s)
    ON CONFLICT (channel, business_address, customer_address)
    WHERE (status = 'open' AND NOT (channel = 'email'))
    DO NOTHING
    RETURNING id"""
_CONVERSATION_OPEN_FIND = f"""
    SELECT id FROM {_CONVERSATION}
    WHERE channel = %s AND business_address = %s AND customer_address = %s
    AND status = 'open'"""

_PARTICIPANT_INSERT = f"""
    INSERT INTO {_PARTICIPANT} (conversation_id, kind, external_id, display_name, metadata)
    VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (conversation_id, kind, external_id) DO NOTHING
    RETURNING id"""
_PARTICIPANT_FIND = f"""
    SELECT id, display_name FROM {_PARTICIPANT}
    WHERE conversation_id = %s AND kind = %s AND external_id = %s"""
_PARTICIPANT_RENAME = f"UPDATE {_PARTICIPANT} SET display_name = %s WHERE id = %s"

_MESSAGE_FIELDS = (
    "conversation_id", "participant_id", "direction", "author_kind", "body", "body_new",
    "subject", "provider", "provider_message_id", "sent_at", "status", "status_rank",
    "status_at", "error_code", "num_segments", "media", "metadata", "raw_event_id",
    "created_at", "purged_at",
)
_MESSAGE_INSERT = f"""
    INSERT INTO {_MESSAGE} ({", ".join(_MESSAGE_FIELDS)})
    VALUES ({", ".join(["%s"] * len(_MESSAGE_FIELDS))})
    ON CONFLICT (provider, provider_message_id) WHERE provider_message_id IS NOT NULL
    DO NOTHING
    RETURNING id"""


def _conversation_open_id(
    sql: Statements, *, channel: str, business_address: str, customer_address: str,
    at: datetime,
) -> int:
    """Id of the customer's open thread, opened if none.

    Concurrent first messages race on the `conversation_one_open_thread` unique index: the
    loser's INSERT waits for the winner to commit, inserts nothing, and reads its row.
    """
    key = [channel, business_address, customer_address]
    at_db = db_value(Conversation, "started_at", at)
    row = sql.one(_CONVERSATION_OPEN, [
        *key, at_db, at_db, db_value(Conversation, "metadata", {}),
        db_value(Conversation, "created_at", timezone.now()),
    ])
    if row is None:
        row = sql.one(_CONVERSATION_OPEN_FIND, key)
        if row is None:  # the thread we lost to was closed meanwhile; let the caller retry
            raise IntegrityError(f"open conversation {key} conflicts but is gone")
    return row[0]


def _participant_id(
    sql: Statements,
    *,
    conversation_id: int,
    kind: str,
    external_id: str,
    display_name: str,
    metadata: dict[str, Any] | None,
    found: tuple[int, str] | None = None,
) -> int:
    """Id of this participant of the conversation, created if new (`found`: already read)."""
    if found is None:
        row = sql.one(_PARTICIPANT_INSERT, [
            conversation_id, kind, external_id, display_name,
            db_value(Participant, "metadata", metadata or {}),
        ])
        if row is not None:
            return row[0]
        found = sql.one(_PARTICIPANT_FIND, [conversation_id, kind, external_id])
        if found is None:  # pragma: no cover - participants are never deleted alone
            raise IntegrityError(f"participant {external_id} conflicts but is gone")
    participant_id, current_name = found
    if display_name and current_name != display_name:
        # WhatsApp profile names change; keep the latest one.
        sql.run(_PARTICIPANT_RENAME, [display_name, participant_id])
    return participant_id


def conversation_get_or_open(
    *, channel: str, business_address: str, customer_address: str, at: datetime
) -> Conversation:
    """The customer's open thread on this channel and business address, opened if none."""
    with Statements() as sql:
        pk = _conversation_open_id(
            sql, channel=channel, business_address=business_address,
            customer_address=customer_address, at=at,
        )
    return Conversation.objects.get(pk=pk)


def participant_get_or_create(
    *,
    conversation: Conversation,
    kind: str,
    external_id: str,
    display_name: str = "",
    metadata: dict[str, Any] | None = None,
) -> Participant:
    with Statements() as sql:
        pk = _participant_id(
            sql, conversation_id=conversation.pk, kind=kind, external_id=external_id,
            display_name=display_name, metadata=metadata,
        )
    return Participant.objects.get(pk=pk)


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


def message_values(
    event: MessageEvent,
    *,
    conversation_id: int,
    participant_id: int,
    status: str,
    raw_event_id: int | None,
    created_at: datetime,
) -> dict[str, Any]:
    """The column values (by attname) of the Message row for an event: the one place an
    event becomes a message row, for the per-event INSERTs and the batch's."""
    return {
        "conversation_id": conversation_id,
        "participant_id": participant_id,
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
        "raw_event_id": raw_event_id,
        "created_at": created_at,
        "purged_at": None,
    }


def _message_from_event(
    event: MessageEvent,
    *,
    conversation_id: int,
    participant_id: int,
    status: str,
    raw_event: RawEvent | None,
) -> Message:
    """The unsaved Message row for an event; its fields feed the SQL INSERT."""
    message = Message(**message_values(
        event, conversation_id=conversation_id, participant_id=participant_id, status=status,
        raw_event_id=raw_event_id_of(event, raw_event),
        created_at=timezone.now(),
    ))
    if raw_event is not None and message.raw_event_id == raw_event.pk:
        message.raw_event = raw_event  # the caller's instance, not a lazy lookup later
    return message


def message_record(*, event: MessageEvent, raw_event: RawEvent | None = None) -> Message:
    """Record one message; a message already known by its provider id is returned as is.

    Round trips for a message in a known thread from a known author: one lookup, one
    INSERT, one UPDATE of the thread's counters.
    """
    author_id = message_author_id(event)
    with Statements() as sql:
        found = sql.one(_MESSAGE_LOOKUP, [
            event.provider, event.provider_message_id or None,
            event.channel, event.business_address, event.customer_address,
            event.author_kind, author_id,
        ])
        assert found is not None  # one row always: the joins are LEFT JOINs
        existing_id, conversation_id, participant_id, participant_name = found
        if existing_id is not None:
            return Message.objects.get(pk=existing_id)
        if conversation_id is None:
            conversation_id = _conversation_open_id(
                sql, channel=event.channel, business_address=event.business_address,
                customer_address=event.customer_address, at=event.occurred_at,
            )
        participant_id = _participant_id(
            sql, conversation_id=conversation_id, kind=event.author_kind,
            external_id=author_id, display_name=event.author_name,
            metadata=event.author_metadata,
            found=None if participant_id is None else (participant_id, participant_name),
        )
        status = message_initial_status(event)
        message = _message_from_event(
            event, conversation_id=conversation_id, participant_id=participant_id,
            status=status, raw_event=raw_event,
        )
        insert_params = [
            db_value(Message, name, getattr(message, name)) for name in _MESSAGE_FIELDS
        ]
        from_customer = event.author_kind == AuthorKind.CUSTOMER
        # On PostgreSQL the INSERT and the thread's counters go in one round trip.
        touched = connection.vendor == "postgresql"
        if touched:
            row = sql.one(
                _conversation_touch_sql(connection.vendor, from_customer, after_insert=True),
                [*insert_params, *_conversation_touch_params(event.occurred_at, from_customer),
                 conversation_id],
            )
        else:
            row = sql.one(_MESSAGE_INSERT, insert_params)
    if row is None:
        # The same provider message recorded concurrently through another path.
        return Message.objects.get(
            provider=event.provider, provider_message_id=event.provider_message_id
        )
    message.pk = row[0]
    message._state.adding = False
    message._state.db = connection.alias

    if not touched:
        conversation_touch(
            conversation_id=conversation_id, at=event.occurred_at, from_customer=from_customer
        )
    if event.conversation_external_id:
        conversation_key_add(
            conversation_id=conversation_id, key=f"events:{event.conversation_external_id}"
        )
    if event.provider_message_id and event.author_kind == AuthorKind.AI:
        # The AI step that produced this message may have been reported first.
        AIStep.objects.filter(
            message__isnull=True,
            message_provider=event.provider,
            message_provider_id=event.provider_message_id,
        ).update(message=message.pk)
    if event.provider_message_id and event.direction == Direction.OUTBOUND:
        # Status reports may have arrived first. Join those committed already, and once more
        # after commit for one committed concurrently with this message (see the docstring
        # of message_statuses_join).
        message_statuses_join(
            provider=event.provider, provider_message_id=event.provider_message_id
        )
        _join_after_commit(event.provider, event.provider_message_id)
    transaction.on_commit(
        lambda: message_recorded.send(sender=Message, message_id=message.pk), robust=True
    )
    return message


@functools.cache
def _conversation_touch_sql(
    vendor: str, from_customer: bool, *, after_insert: bool = False
) -> str:
    """The UPDATE of conversation_touch; `after_insert`: the message INSERT and this UPDATE as
    one statement (PostgreSQL), the UPDATE joined to what the INSERT returned, so it counts
    the message only if it was inserted. Parameters: the INSERT's, then the UPDATE's."""
    # PostgreSQL's GREATEST/LEAST are SQLite's two-argument MAX/MIN (no NULLs reach them).
    greatest, least = ("GREATEST", "LEAST") if vendor == "postgresql" else ("MAX", "MIN")
    customer = (
        f", last_customer_message_at = {greatest}(COALESCE(last_customer_message_at, %s), %s)"
        if from_customer else ""
    )
    update = (
        f"UPDATE {_CONVERSATION} SET message_count = message_count + 1, "
        f"last_activity_at = {greatest}(last_activity_at, %s), "
        f"started_at = {least}(started_at, %s){customer}"
    )
    if after_insert:
        return (
            f"WITH inserted AS ({_MESSAGE_INSERT}) {update} FROM inserted "
            f"WHERE {_CONVERSATION}.id = %s RETURNING inserted.id"
        )
    return f"{update} WHERE id = %s"


def _conversation_touch_params(at: datetime, from_customer: bool) -> list[Any]:
    at_db = db_value(Conversation, "last_activity_at", at)
    return [at_db, at_db, *([at_db, at_db] if from_customer else [])]


def conversation_touch(*, conversation_id: int, at: datetime, from_customer: bool) -> None:
    """Count a message on its conversation without losing concurrent updates.

    One UPDATE with database-side arithmetic: two webhooks for the same conversation each
    add one, and messages that arrive out of order never move the activity clock back.
    """
    params = [*_conversation_touch_params(at, from_customer), conversation_id]
    with Statements() as sql:
        sql.run(_conversation_touch_sql(connection.vendor, from_customer), params)


def message_status_record(
    *, event: StatusEvent, raw_event: RawEvent | None = None
) -> MessageStatusEvent:
    """Keep a delivery status report in the history and move its message forward.

    Reports about a message not recorded yet wait (message unset) until it is.
    """
    message = (
        Message.objects.filter(
            provider=event.provider, provider_message_id=event.provider_message_id
        )
        .only("pk", "conversation_id")
        .first()
    )
    status_event, created = MessageStatusEvent.objects.get_or_create(
        provider=event.provider,
        provider_message_id=event.provider_message_id,
        provider_status=event.provider_status,
        defaults={
            "message": message,
            "conversation_id": message.conversation_id if message else None,
            "status": event.status,
            "error_code": event.error_code,
            "error_message": event.error_message,
            "occurred_at": event.occurred_at,
            "raw_event_id": raw_event_id_of(event, raw_event),
            "metadata": event.metadata,
        },
    )
    if message is not None:
        message_status_advance(
            message_id=message.pk,
            status=event.status,
            at=event.occurred_at,
            error_code=event.error_code,
        )
    else:
        _join_after_commit(event.provider, event.provider_message_id)
    return status_event


def message_status_advance(
    *, message_id: int, status: str, at: datetime, error_code: str = ""
) -> bool:
    """Move a message's current status forward; a report that is not ahead changes nothing.

    The rank test is in the UPDATE's WHERE clause, so two concurrent reports cannot both
    win, and a late "delivered" never overwrites "read".
    """
    rank = STATUS_RANK.get(status, 0)
    changes: dict[str, Any] = {"status": status, "status_rank": rank, "status_at": at}
    if error_code:
        changes["error_code"] = error_code
    return bool(Message.objects.filter(pk=message_id, status_rank__lt=rank).update(**changes))


def message_statuses_join(*, provider: str, provider_message_id: str) -> int:
    """Attach waiting status reports to their message, if it is recorded; returns how many.

    Called inside the transaction that records a message or a report, and again after it
    commits: of two transactions committing concurrently (a message and its early report),
    the one whose after-commit call runs last sees both rows, so none is left waiting.
    """
    message = (
        Message.objects.filter(provider=provider, provider_message_id=provider_message_id)
        .only("pk", "conversation_id")
        .first()
    )
    if message is None:
        return 0
    waiting = list(
        MessageStatusEvent.objects.filter(
            provider=provider, provider_message_id=provider_message_id, message__isnull=True
        ).order_by("pk")  # arrival order breaks ties of rank and time (sorted() is stable)
    )
    if not waiting:
        return 0
    MessageStatusEvent.objects.filter(pk__in=[s.pk for s in waiting]).update(
        message=message.pk, conversation=message.conversation_id
    )
    for report in sorted(waiting, key=lambda s: (STATUS_RANK.get(s.status, 0), s.occurred_at)):
        message_status_advance(
            message_id=message.pk,
            status=report.status,
            at=report.occurred_at,
            error_code=report.error_code,
        )
    return len(waiting)


_WAITING_JOIN = f"""
    SELECT DISTINCT s.provider, s.provider_message_id FROM {MessageStatusEvent._meta.db_table} s
    JOIN unnest(%s::text[], %s::text[]) AS k(provider, provider_message_id)
      ON s.provider = k.provider AND s.provider_message_id = k.provider_message_id
    JOIN {_MESSAGE} m
      ON m.provider = s.provider AND m.provider_message_id = s.provider_message_id
    WHERE s.message_id IS NULL"""


def message_statuses_join_many(*, pairs: Sequence[tuple[str, str]]) -> int:
    """message_statuses_join for many (provider, provider message id) pairs, after a
    batch commits: one statement finds the few that have a waiting report and a recorded
    message, and only those are joined."""
    if not pairs:
        return 0
    providers, pmids = (list(c) for c in zip(*pairs, strict=True))
    # The look-up alone, outside a transaction (it is one statement): almost always it
    # finds nothing, and BEGIN/COMMIT would double its round trips.
    with Statements() as sql:
        joinable = sql.all(_WAITING_JOIN, [providers, pmids])
    joined = 0
    for provider, pmid in joinable:
        with transaction.atomic():
            joined += message_statuses_join(provider=provider, provider_message_id=pmid)
    return joined


def _join_after_commit(provider: str, provider_message_id: str) -> None:
    def join() -> None:
        with transaction.atomic():
            message_statuses_join(provider=provider, provider_message_id=provider_message_id)

    transaction.on_commit(join, robust=True)


def message_statuses_reconcile() -> int:
    """Join every waiting report whose message now exists (catch-up for a crash between a
    commit and its after-commit join). Returns how many reports were joined."""
    joined = 0
    waiting = (
        MessageStatusEvent.objects.filter(message__isnull=True)
        .values_list("provider", "provider_message_id")
        .distinct()
    )
    for provider, provider_message_id in waiting.iterator():
        with transaction.atomic():
            joined += message_statuses_join(
                provider=provider, provider_message_id=provider_message_id
            )
    return joined


# --- the rest of the journey: AI steps, handoff/conversation events, outcomes -----------


def conversation_key_add(*, conversation_id: int, key: str) -> None:
    """Register a name for a conversation; a name already taken keeps its conversation."""
    ConversationKey.objects.bulk_create(
        [ConversationKey(conversation_id=conversation_id, key=key)], ignore_conflicts=True
    )


def conversation_resolve(*, ref: ConversationRef, at: datetime) -> Conversation:
    """The conversation an event names, opened if unknown (events may precede messages).

    By external id first; else by addresses. A conversation opened from an external id
    alone uses that id as its customer address until a message tells more.
    """
    key = f"events:{ref.external_id}" if ref.external_id else ""
    if key:
        found = ConversationKey.objects.filter(key=key).select_related("conversation").first()
        if found is not None:
            return found.conversation
    if not ref.customer_address and not key:
        raise NormalizationError("the event names no conversation (external_id or addresses)")
    conversation = conversation_get_or_open(
        channel=ref.channel,
        business_address=ref.business_address,
        customer_address=ref.customer_address or ref.external_id,
        at=at,
    )
    if key:
        conversation_key_add(conversation_id=conversation.pk, key=key)
        # A concurrent event may have registered the key to another thread first.
        conversation = ConversationKey.objects.get(key=key).conversation
    return conversation


def ai_step_record(*, event: AIStepEvent, raw_event: RawEvent | None = None) -> AIStep:
    """Record one AI decision, linked to the message it produced (now or when it arrives).
    A step re-sent with the same id is updated in place, not duplicated."""
    message = None
    if event.message_provider_id:
        message = Message.objects.filter(
            provider=event.message_provider or "events",
            provider_message_id=event.message_provider_id,
        ).first()
    if event.conversation.channel == Channel.EMAIL:
        conversation = _email_step_conversation(event=event, message=message)
    else:
        conversation = conversation_resolve(ref=event.conversation, at=event.occurred_at)
    step, _ = AIStep.objects.update_or_create(
        conversation=conversation,
        external_id=event.external_id,
        defaults={
            **event.fields,
            "occurred_at": event.occurred_at,
            "operation": event.operation,
            "message": message,
            "message_provider": event.message_provider or "events",
            "message_provider_id": event.message_provider_id,
            "raw_event_id": raw_event_id_of(event, raw_event),
        },
    )
    return step


def _email_step_conversation(*, event: AIStepEvent, message: Message | None) -> Conversation:
    """The e-mail thread of an AI step. E-mail threads are not "the customer's open thread"
    (conversation_resolve would open a new one each time): the message the step produced
    pins it; before that message arrives, its Message-ID may be registered by a reply
    already; else the platform's external id; else the customer's latest open thread on
    that mailbox; else a new thread. The step registers its Message-ID as a key of the
    thread it chose, so the e-mail, when it comes, threads there (and links the step)."""
    ref = event.conversation
    keys = [f"email:{event.message_provider_id}"] if event.message_provider == "email" else []
    if ref.external_id:
        keys.append(f"events:{ref.external_id}")
    found = {k.key: k.conversation_id for k in ConversationKey.objects.filter(key__in=keys)}
    conversation_id = next((found[k] for k in keys if k in found), None)
    if message is not None:
        conversation = Conversation.objects.get(pk=message.conversation_id)
    elif conversation_id is not None:
        conversation = Conversation.objects.get(pk=conversation_id)
    else:
        # E-mail addresses are compared lower-cased (as the inbound path stores them); a
        # thread named by external id alone uses it as the customer, as conversation_resolve.
        business = ref.business_address.lower()
        customer = ref.customer_address.lower() or ref.external_id
        _email_lock(business_address=business, customer_address=customer)
        conversation = (
            Conversation.objects.filter(
                channel=Channel.EMAIL, business_address=business, customer_address=customer,
                status=Conversation.Status.OPEN,
            ).order_by("-last_activity_at", "-pk").first()
            or Conversation.objects.create(
                channel=Channel.EMAIL, business_address=business, customer_address=customer,
                started_at=event.occurred_at, last_activity_at=event.occurred_at,
            )
        )
    for key in keys:
        conversation_key_add(conversation_id=conversation.pk, key=key[:512])
    return conversation


def conversation_event_record(
    *, event: LifecycleEvent, raw_event: RawEvent | None = None
) -> ConversationEvent:
    """Keep a handoff or conversation event. `conversation.closed` also closes the thread,
    so the customer's next message opens a new one."""
    conversation = conversation_resolve(ref=event.conversation, at=event.occurred_at)
    record, created = ConversationEvent.objects.get_or_create(
        conversation=conversation,
        external_id=event.external_id,
        defaults={
            "type": event.type,
            "occurred_at": event.occurred_at,
            "actor_kind": event.actor_kind,
            "actor_id": event.actor_id,
            "actor_name": event.actor_name,
            "data": event.data,
            "raw_event_id": raw_event_id_of(event, raw_event),
        },
    )
    if created and event.type == "conversation.closed":
        Conversation.objects.filter(
            pk=conversation.pk, status=Conversation.Status.OPEN
        ).update(status=Conversation.Status.CLOSED, closed_at=event.occurred_at)
    return record


def outcome_record(*, event: OutcomeEvent, raw_event: RawEvent | None = None) -> Outcome:
    conversation = conversation_resolve(ref=event.conversation, at=event.occurred_at)
    outcome, _ = Outcome.objects.update_or_create(
        conversation=conversation,
        external_id=event.external_id,
        defaults={**event.fields, "occurred_at": event.occurred_at,
                  "raw_event_id": raw_event_id_of(event, raw_event)},
    )
    return outcome


# --- flags ------------------------------------------------------------------------------


def flag_raise(
    *,
    conversation: Conversation,
    kind: str,
    severity: str,
    subject_type: str,
    subject_id: int,
    evidence: dict[str, Any],
    at: datetime | None = None,
) -> tuple[Flag, bool]:
    """Raise a finding; if the same finding is already open (or acknowledged), refresh its
    evidence and severity instead of opening a second flag. Returns (flag, created)."""
    at = at or timezone.now()
    try:
        with transaction.atomic():
            flag = Flag.objects.create(
                conversation=conversation,
                kind=kind,
                severity=severity,
                subject_type=subject_type,
                subject_id=subject_id,
                evidence=evidence,
                raised_at=at,
            )
        conversations_flag_rank_refresh(conversation_ids=[conversation.pk])
        return flag, True
    except IntegrityError:
        flag = Flag.objects.select_for_update().get(
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            status__in=Flag.ACTIVE_STATUSES,
        )
        flag.evidence = evidence
        flag.severity = severity
        flag.save(update_fields=["evidence", "severity", "updated_at"])
        conversations_flag_rank_refresh(conversation_ids=[conversation.pk])
        return flag, False


def flag_set_status(*, flag: Flag, status: str, by: str, note: str = "") -> Flag:
    flag.status = status
    flag.status_changed_at = timezone.now()
    flag.status_changed_by = by
    if note:
        flag.note = note
    flag.save(update_fields=["status", "status_changed_at", "status_changed_by", "note"])
    conversations_flag_rank_refresh(conversation_ids=[flag.conversation_id])
    return flag


def conversations_flag_rank_refresh(*, conversation_ids: Iterable[int]) -> int:
    """Recompute Conversation.open_flag_rank (the highest severity among active flags) for
    some conversations, in one UPDATE. Every service that raises flags or changes their
    status calls it."""
    ids = list(set(conversation_ids))
    if not ids:
        return 0
    rank = Case(
        *[When(severity=name, then=Value(value)) for name, value in FLAG_SEVERITY_RANK.items()],
        default=Value(0),
        output_field=models.PositiveSmallIntegerField(),
    )
    highest = (
        Flag.objects.filter(conversation=OuterRef("pk"), status__in=Flag.ACTIVE_STATUSES)
        .annotate(rank=rank)
        .order_by("-rank")
        .values("rank")[:1]
    )
    return Conversation.objects.filter(pk__in=ids).update(
        open_flag_rank=Coalesce(Subquery(highest), Value(0))
    )


# --- e-mail threads ---------------------------------------------------------------------
#
# E-mail is not one open thread per customer: each Message-ID chain is its own conversation
# (the partial unique index leaves channel "email" out), found through ConversationKey
# ("email:<message-id>") or, for mail that names no known message, by customer, business
# address and normalized subject within EMAIL_THREAD_WINDOW_HOURS. Off the hot path: ORM
# for the lookups, the shared SQL for the message INSERT.


def _email_lock(*, business_address: str, customer_address: str) -> None:
    """Serialize threading for one customer and mailbox until the transaction ends, so two
    concurrent messages of a new thread do not open two conversations (PostgreSQL only;
    SQLite writes one transaction at a time anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                [f"email:{business_address}:{customer_address}"],
            )


def conversation_for_email_thread(
    *, business_address: str, customer_address: str, message_id: str,
    references: Sequence[str], thread_subject: str, at: datetime,
) -> Conversation | None:
    """The conversation an e-mail belongs to, or None for a new thread.

    By key first: the message's own Message-ID (a reply that arrived first registered it),
    then In-Reply-To and References, nearest first. Else the customer's open thread on this
    mailbox with the same normalized subject, active within the configured window.
    """
    ids = [i for i in (message_id, *references) if i]
    if ids:
        keys = {k.key: k.conversation_id for k in ConversationKey.objects.filter(
            key__in=[f"email:{i}" for i in ids])}
        for i in ids:
            if f"email:{i}" in keys:
                return Conversation.objects.get(pk=keys[f"email:{i}"])
    window = timedelta(hours=auditor_settings.EMAIL_THREAD_WINDOW_HOURS)
    return (
        Conversation.objects.filter(
            channel=Channel.EMAIL,
            business_address=business_address,
            customer_address=customer_address,
            status=Conversation.Status.OPEN,
            subject__iexact=thread_subject,
            last_activity_at__gte=at - window,
            last_activity_at__lte=at + window,
        )
        .order_by("-last_activity_at", "-pk")
        .first()
    )


def email_message_record(*, event: MessageEvent, raw_event: RawEvent | None = None) -> Message:
    """Record one e-mail in its thread; a Message-ID already recorded is returned as is.

    Same guarantees as message_record: dedupe on (provider, provider_message_id), counters
    through conversation_touch, message_recorded after commit.
    """
    provider_message_id = event.provider_message_id or None
    if provider_message_id:
        existing = Message.objects.filter(
            provider=event.provider, provider_message_id=provider_message_id
        ).first()
        if existing is not None:
            return existing
    _email_lock(business_address=event.business_address,
                customer_address=event.customer_address)
    external_key = (
        f"events:{event.conversation_external_id}" if event.conversation_external_id else ""
    )
    named = ConversationKey.objects.filter(key=external_key).first() if external_key else None
    conversation = Conversation.objects.get(pk=named.conversation_id) if named else None
    conversation = conversation or conversation_for_email_thread(
        business_address=event.business_address,
        customer_address=event.customer_address,
        message_id=provider_message_id or "",
        references=event.references,
        thread_subject=event.thread_subject,
        at=event.occurred_at,
    )
    if conversation is None:
        conversation = Conversation.objects.create(
            channel=Channel.EMAIL,
            business_address=event.business_address,
            customer_address=event.customer_address,
            subject=event.thread_subject[:998],
            started_at=event.occurred_at,
            last_activity_at=event.occurred_at,
        )
    for i in (provider_message_id, *event.references):
        if i:
            conversation_key_add(conversation_id=conversation.pk, key=f"email:{i}"[:512])
    if external_key:  # an e-mail reported by the platform (events webhook) names its thread
        conversation_key_add(conversation_id=conversation.pk, key=external_key)
    author_id = message_author_id(event)
    status = message_initial_status(event)
    with Statements() as sql:
        participant_id = _participant_id(
            sql, conversation_id=conversation.pk, kind=event.author_kind,
            external_id=author_id, display_name=event.author_name,
            metadata=event.author_metadata,
        )
        message = _message_from_event(
            event, conversation_id=conversation.pk, participant_id=participant_id,
            status=status, raw_event=raw_event,
        )
        row = sql.one(_MESSAGE_INSERT, [
            db_value(Message, name, getattr(message, name)) for name in _MESSAGE_FIELDS
        ])
    if row is None:  # recorded concurrently (the lock is per thread, not per Message-ID)
        return Message.objects.get(
            provider=event.provider, provider_message_id=provider_message_id
        )
    message.pk = row[0]
    message._state.adding = False
    message._state.db = connection.alias
    conversation_touch(
        conversation_id=conversation.pk, at=event.occurred_at,
        from_customer=event.author_kind == AuthorKind.CUSTOMER,
    )
    if provider_message_id and event.direction == Direction.OUTBOUND:
        # As on the other channels: the AI step that produced this reply, and the ESP's
        # delivery reports (anymail tracking), may have come first. An e-mail reply is
        # often sent by a person from the AI's draft, so any outbound message links.
        AIStep.objects.filter(
            message__isnull=True, message_provider=event.provider,
            message_provider_id=provider_message_id,
        ).update(message=message.pk)
        message_statuses_join(provider=event.provider, provider_message_id=provider_message_id)
        _join_after_commit(event.provider, provider_message_id)
    transaction.on_commit(
        lambda: message_recorded.send(sender=Message, message_id=message.pk), robust=True
    )
    return message
