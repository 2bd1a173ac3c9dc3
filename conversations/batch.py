"""Set-based application of a batch of normalized events (PostgreSQL).

`services.events_apply` hands a batch here when the database is PostgreSQL and the batch
has more than one event and no e-mail: instead of several statements per event, each
table gets one multi-row statement per batch (`INSERT ... SELECT FROM unnest(...)`, one
array parameter per column, so the statement text is fixed and prepared once per
connection). The per-event functions in services.py stay the reference (SQLite, single
events, e-mail); this module reproduces their results:

- idempotent: messages are found by (provider, provider_message_id), status reports by
  (provider, provider_message_id, provider_status), participants, keys, AI steps,
  conversation events and outcomes by their unique keys (ON CONFLICT), so re-applying a
  raw event finds every row again and changes nothing;
- conversations are resolved by walking the events in order in memory (what the per-event
  path would find or open), then opened in one INSERT ... ON CONFLICT on the one-open-thread
  index, sorted by (channel, addresses), and locked (advisory locks) in id order before
  anything updates them, so concurrent batches queue instead of deadlocking;
- counters and clocks: one UPDATE per batch with database-side arithmetic
  (message_count + n, GREATEST/LEAST), counting only the messages the INSERT inserted;
- status reports: the outcome of applying them one by one (a report moves a message only
  forward, `WHERE status_rank < new rank`), computed per message and written in one UPDATE;
- `conversation.closed` ends a segment: events after it are resolved again, so the
  customer's next message opens a new thread, as one by one.
E-mail (threading by Message-ID and subject under an advisory lock) is not set-based; a
batch with an e-mail conversation goes the per-event way.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from django.db import IntegrityError, connection, models
from django.db.models.base import ModelState
from django.utils import timezone

# services imports this module; the module object resolves its names when called.
from . import services
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
    STATUS_RANK,
    AIStep,
    AuthorKind,
    Channel,
    Conversation,
    ConversationEvent,
    ConversationKey,
    Direction,
    Message,
    MessageStatusEvent,
    Outcome,
    Participant,
    RawEvent,
)

Triple = tuple[str, str, str]  # channel, business address, customer address


def batch_applicable(events: Sequence[NormalizedEvent]) -> bool:
    """Whether `events` take the set-based path: PostgreSQL, a real batch, no e-mail."""
    if connection.vendor != "postgresql" or len(events) < 2:
        return False
    for event in events:
        if isinstance(event, MessageEvent) and event.channel == Channel.EMAIL:
            return False
        ref = getattr(event, "conversation", None)
        if isinstance(ref, ConversationRef) and ref.channel == Channel.EMAIL:
            return False
    return True


# --- SQL ------------------------------------------------------------------------------


def _column(model: type[models.Model], name: str) -> models.Field:
    return model._meta.get_field(name)


@functools.cache
def _insert_sql(model: type[models.Model], names: tuple[str, ...], conflict: str,
                returning: str, where: str = "") -> str:
    """INSERT of many rows passed as one JSON array of objects (see _rows); `where`
    filters them (the rows are `r`, their columns c0, c1, ... in `names` order)."""
    table = model._meta.db_table
    columns = ", ".join(_column(model, n).column for n in names)
    defs = ", ".join(
        f"c{i} {_column(model, n).db_type(connection)}" for i, n in enumerate(names))
    picked = ", ".join(f"c{i}" for i in range(len(names)))
    return (
        f"INSERT INTO {table} ({columns}) "
        f"SELECT {picked} FROM json_to_recordset(%s::json) AS r({defs}) "
        + (f"WHERE {where} " if where else "") + conflict
        + (f" RETURNING {returning}" if returning else "")
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _rows(names: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> list[str]:
    """The parameter of an _insert_sql statement: the rows as one JSON text.

    One orjson.dumps per batch instead of an array per column: binding ~20 arrays value by
    value cost more Python time than PostgreSQL took to insert the rows, and the standard
    json module took 1.4 ms for a batch's messages where orjson takes 0.1 ms. Aware
    datetimes become RFC 3339 with their offset; JSON columns travel as nested JSON;
    json_to_recordset casts each value to its column type.
    """
    keys = [f"c{i}" for i in range(len(names))]
    return [orjson.dumps([dict(zip(keys, row, strict=True)) for row in rows],
                         default=_json_value).decode()]


_CONVERSATION = Conversation._meta.db_table
_MESSAGE = Message._meta.db_table
_STATUS = MessageStatusEvent._meta.db_table

# The lookups walk the batch's keys and probe the unique index for each (LATERAL, and
# OFFSET 0 so the planner cannot flatten it into a join): planned from a new table's
# missing statistics, the join scanned every open conversation once per batch instead.
_CONVERSATIONS_OPEN_FIND = f"""
    SELECT c.id, k.channel, k.business, k.customer
    FROM unnest(%b::text[], %b::text[], %b::text[]) AS k(channel, business, customer)
    CROSS JOIN LATERAL (
        SELECT id FROM {_CONVERSATION}
        WHERE channel = k.channel AND business_address = k.business
          AND customer_address = k.customer AND status = 'open' AND NOT (channel = 'email')
        OFFSET 0
    ) c"""
_CONVERSATIONS_OPEN_NAMES = (
    "channel", "business_address", "customer_address", "status", "subject", "started_at",
    "last_activity_at", "message_count", "metadata", "created_at",
)
# The conflict target repeats the conversation_one_open_thread predicate word for word.
_CONVERSATIONS_OPEN_CONFLICT = (
    "ON CONFLICT (channel, business_address, customer_address) "
    "WHERE (status = 'open' AND NOT (channel = 'email')) DO NOTHING"
)
@functools.cache
def _conversations_find_or_open_sql() -> str:
    """Read the threads that are open already, and INSERT the others ON CONFLICT DO
    NOTHING (most of a batch's threads exist: they are not even tried). Both parts take
    the same JSON rows; a thread opened concurrently and committed while the INSERT
    waited for it is in neither part (the statement's snapshot predates it)."""
    insert = _insert_sql(
        Conversation, _CONVERSATIONS_OPEN_NAMES, _CONVERSATIONS_OPEN_CONFLICT,
        "id, channel, business_address, customer_address",
        where="NOT EXISTS (SELECT 1 FROM found f "
              "WHERE f.c0 = r.c0 AND f.c1 = r.c1 AND f.c2 = r.c2)")
    return f"""
    WITH found AS (
        SELECT c.id, k.c0, k.c1, k.c2
        FROM json_to_recordset(%s::json) AS k(c0 text, c1 text, c2 text)
        CROSS JOIN LATERAL (
            SELECT id FROM {_CONVERSATION}
            WHERE channel = k.c0 AND business_address = k.c1 AND customer_address = k.c2
              AND status = 'open' AND NOT (channel = 'email')
            OFFSET 0
        ) c
    ),
    opened AS ({insert})
    SELECT id, c0, c1, c2 FROM found
    UNION ALL
    SELECT id, channel, business_address, customer_address FROM opened"""


# Concurrent batches that touch some of the same conversations would deadlock if their
# counter UPDATEs locked the rows in different orders (the order of a multi-row UPDATE is
# the plan's). Each batch first takes a transaction-scoped advisory lock per conversation,
# in id order (in _messages_insert_sql), so they queue instead. Advisory, not row locks
# (SELECT ... FOR UPDATE): locking ~100 rows wrote each tuple and its WAL record, 2.5 ms of
# PostgreSQL per batch, for rows the UPDATE rewrites anyway. The keys are offset past 2^40
# so they never meet the e-mail threading locks (hashtext, 32-bit).
CONVERSATION_LOCK_OFFSET = 1 << 40
_KEYS_FIND = (
    f"SELECT key, conversation_id FROM {ConversationKey._meta.db_table} "
    "WHERE key = ANY(%b::text[])"
)
_PARTICIPANTS_FIND = f"""
    SELECT p.id, k.conversation_id, k.kind, k.external_id, p.display_name
    FROM unnest(%b::bigint[], %b::text[], %b::text[]) AS k(conversation_id, kind, external_id)
    CROSS JOIN LATERAL (
        SELECT id, display_name FROM {Participant._meta.db_table}
        WHERE conversation_id = k.conversation_id AND kind = k.kind
          AND external_id = k.external_id
        OFFSET 0
    ) p"""
_PARTICIPANT_NAMES = ("conversation_id", "kind", "external_id", "display_name", "metadata")


@functools.cache
def _participants_find_or_add_sql() -> str:
    """As _conversations_find_or_open_sql, for participants."""
    insert = _insert_sql(
        Participant, _PARTICIPANT_NAMES,
        "ON CONFLICT (conversation_id, kind, external_id) DO NOTHING",
        "id, conversation_id, kind, external_id, display_name",
        where="NOT EXISTS (SELECT 1 FROM found f "
              "WHERE f.c0 = r.c0 AND f.c1 = r.c1 AND f.c2 = r.c2)")
    return f"""
    WITH found AS (
        SELECT p.id, k.c0, k.c1, k.c2, p.display_name
        FROM json_to_recordset(%s::json) AS k(c0 bigint, c1 text, c2 text)
        CROSS JOIN LATERAL (
            SELECT id, display_name FROM {Participant._meta.db_table}
            WHERE conversation_id = k.c0 AND kind = k.c1 AND external_id = k.c2
            OFFSET 0
        ) p
    ),
    added AS ({insert})
    SELECT id, c0, c1, c2, display_name FROM found
    UNION ALL
    SELECT id, conversation_id, kind, external_id, display_name FROM added"""


_PARTICIPANTS_RENAME = f"""
    UPDATE {Participant._meta.db_table} p SET display_name = k.name
    FROM unnest(%b::bigint[], %b::text[]) AS k(id, name) WHERE p.id = k.id"""

_MESSAGE_NAMES = (
    "conversation_id", "participant_id", "direction", "author_kind", "body", "body_new",
    "subject", "provider", "provider_message_id", "sent_at", "status", "status_rank",
    "status_at", "error_code", "num_segments", "media", "metadata", "raw_event_id",
    "created_at", "purged_at",
)
_MESSAGE_ATTNAMES = frozenset(("id", *_MESSAGE_NAMES))
assert _MESSAGE_ATTNAMES == {f.attname for f in Message._meta.concrete_fields}


def _saved(model: type[models.Model], values: dict[str, Any]) -> Any:
    """An instance of a row just written, from all its column values by attname, built as
    unpickling builds one (no Model.__init__: 26 us a message with keywords, 10 us through
    from_db, ~100 messages a batch)."""
    instance = model.__new__(model)
    instance.__dict__.update(values)
    instance._state = ModelState()
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
_MESSAGE_CONFLICT = (
    "ON CONFLICT (provider, provider_message_id) WHERE provider_message_id IS NOT NULL "
    "DO NOTHING"
)


@functools.cache
def _messages_insert_sql() -> str:
    """One statement for the batch's new messages. Parameters: the conversation locks
    (ids + CONVERSATION_LOCK_OFFSET, sorted), the rows (JSON).

    - `locked`: advisory locks in id order, taken before `touched` updates any thread
      (its WHERE waits on them), so concurrent batches queue instead of deadlocking;
    - `inserted`: the messages (ON CONFLICT: a provider id recorded already is skipped);
    - `touched`: the threads' counters and clocks, from what was inserted only;
    - `linked`: AI steps reported before the AI message they produced;
    - `joined`: status reports that came before their outbound message.
    Returns ('m', id, provider, provider message id, -, -, -) per inserted message and
    ('s', message id, status, -, occurred_at, error code, report id) per joined report.
    """
    insert = _insert_sql(
        Message, _MESSAGE_NAMES, _MESSAGE_CONFLICT,
        "id, conversation_id, provider, provider_message_id, sent_at, author_kind, direction",
    )
    return f"""
    WITH locked AS (
        SELECT count(pg_advisory_xact_lock(k)) AS n FROM unnest(%b::bigint[]) AS k
    ),
    inserted AS ({insert}),
    counted AS (
        SELECT conversation_id, count(*) AS n, max(sent_at) AS last_at,
               min(sent_at) AS first_at,
               max(sent_at) FILTER (WHERE author_kind = 'customer') AS customer_at
        FROM inserted GROUP BY conversation_id
    ),
    touched AS (
        UPDATE {_CONVERSATION} c SET
            message_count = c.message_count + counted.n,
            last_activity_at = GREATEST(c.last_activity_at, counted.last_at),
            started_at = LEAST(c.started_at, counted.first_at),
            last_customer_message_at = GREATEST(c.last_customer_message_at,
                                                counted.customer_at)
        FROM counted WHERE c.id = counted.conversation_id
          AND (SELECT n FROM locked) IS NOT NULL
    ),
    linked AS (
        UPDATE {AIStep._meta.db_table} s SET message_id = i.id FROM inserted i
        WHERE i.author_kind = 'ai' AND s.message_id IS NULL
          AND s.message_provider = i.provider AND s.message_provider_id = i.provider_message_id
    ),
    joined AS (
        UPDATE {_STATUS} s SET message_id = i.id, conversation_id = i.conversation_id
        FROM inserted i
        WHERE i.direction = 'outbound' AND s.message_id IS NULL
          AND s.provider = i.provider AND s.provider_message_id = i.provider_message_id
        RETURNING s.id, s.message_id, s.status, s.occurred_at, s.error_code
    )
    SELECT 'm', id, provider, provider_message_id, NULL::timestamptz, '', NULL::bigint
    FROM inserted
    UNION ALL
    SELECT 's', message_id, status, NULL, occurred_at, error_code, id FROM joined"""


_MESSAGES_FIND = f"""
    SELECT m.id, m.conversation_id, k.provider, k.provider_message_id, m.status_rank,
           m.direction
    FROM unnest(%b::text[], %b::text[]) AS k(provider, provider_message_id)
    CROSS JOIN LATERAL (
        SELECT id, conversation_id, status_rank, direction FROM {_MESSAGE}
        WHERE provider = k.provider AND provider_message_id = k.provider_message_id
        OFFSET 0
    ) m"""
# Waiting status reports (message not recorded when they came) of messages now recorded.
_STATUS_NAMES = (
    "message_id", "conversation_id", "provider", "provider_message_id", "status",
    "provider_status", "error_code", "error_message", "occurred_at", "raw_event_id",
    "metadata",
)
def _statuses_insert_sql() -> str:
    return _insert_sql(MessageStatusEvent, _STATUS_NAMES,
                       "ON CONFLICT (provider, provider_message_id, provider_status) DO NOTHING",
                       "")


_STATUSES_ADVANCE = f"""
    UPDATE {_MESSAGE} m SET status = k.status, status_rank = k.rank, status_at = k.at,
        error_code = CASE WHEN k.error_code = '' THEN m.error_code ELSE k.error_code END
    FROM unnest(%b::bigint[], %b::text[], %b::smallint[], %b::timestamptz[], %b::text[])
         AS k(id, status, rank, at, error_code)
    WHERE m.id = k.id AND m.status_rank < k.rank"""
# Rows this transaction inserted (invisible to others): set, not advanced.
_STATUSES_SET = f"""
    UPDATE {_MESSAGE} m SET status = k.status, status_rank = k.rank, status_at = k.at,
        error_code = k.error_code
    FROM unnest(%b::bigint[], %b::text[], %b::smallint[], %b::timestamptz[], %b::text[])
         AS k(id, status, rank, at, error_code)
    WHERE m.id = k.id"""
_CONVERSATIONS_CLOSE = (
    f"UPDATE {_CONVERSATION} c SET status = 'closed', closed_at = k.at "
    "FROM unnest(%b::bigint[], %b::timestamptz[]) AS k(id, at) "
    "WHERE c.id = k.id AND c.status = 'open'"
)

_AI_STEP_NAMES = tuple(
    f.attname for f in AIStep._meta.concrete_fields if not f.primary_key
)
_OUTCOME_NAMES = tuple(
    f.attname for f in Outcome._meta.concrete_fields if not f.primary_key
)
_EVENT_NAMES = tuple(
    f.attname for f in ConversationEvent._meta.concrete_fields if not f.primary_key
)


StatusState = tuple[str, int, Any, str]  # status, rank, status_at, error_code


def _fold(state: StatusState, reports: Sequence[tuple[str, datetime, str]]) -> StatusState:
    """A message's status after its reports, applied one by one as message_status_advance
    does: only a higher rank moves it (the first of equal ranks stays); an error code
    is taken from the report that moved it, when it has one."""
    status, rank, at, code = state
    for report_status, report_at, report_code in reports:
        report_rank = STATUS_RANK.get(report_status, 0)
        if report_rank > rank:
            status, rank, at = report_status, report_rank, report_at
            code = report_code or code
    return status, rank, at, code


def _by_rank(
    reports: Sequence[tuple[str, datetime, str, tuple[int, int]]],
) -> list[tuple[str, datetime, str]]:
    """Waiting reports (status, at, error code, arrival) in the order
    message_statuses_join applies them: by rank, time, then arrival."""
    ordered = sorted(reports, key=lambda r: (STATUS_RANK.get(r[0], 0), r[1], r[3]))
    return [r[:3] for r in ordered]


def _upsert_conflict(names: Sequence[str]) -> str:
    """Re-sent AI steps and outcomes are updated in place (update_or_create's semantics)."""
    updated = [n for n in names if n not in ("conversation_id", "external_id")]
    return "ON CONFLICT (conversation_id, external_id) DO UPDATE SET " + ", ".join(
        f"{n} = EXCLUDED.{n}" for n in updated
    )


# --- applying ---------------------------------------------------------------------------


@dataclass
class BatchResult:
    """What the batch recorded or found again, in event order (journey_recorded), the new
    messages (message_recorded after commit) and the provider ids whose waiting status
    reports must be joined once more after commit."""

    messages: list[Message] = field(default_factory=list)
    conversation_events: list[ConversationEvent] = field(default_factory=list)
    new_message_ids: list[int] = field(default_factory=list)
    join_after_commit: set[tuple[str, str]] = field(default_factory=set)
    conversation_ids: set[int] = field(default_factory=set)  # for the dashboard's marks


def batch_apply(sql: Any, *, events: Sequence[NormalizedEvent],
                raw_event: RawEvent | None) -> BatchResult:
    """Apply `events` set-based (see the module docstring); `sql` is a sql.Statements."""
    result = BatchResult()
    segment: list[NormalizedEvent] = []
    for event in events:
        segment.append(event)
        if isinstance(event, LifecycleEvent) and event.type == "conversation.closed":
            _Segment(sql, segment, raw_event, result).apply()
            segment = []
    if segment:
        _Segment(sql, segment, raw_event, result).apply()
    return result


def _conversation_key(ref_external_id: str) -> str:
    return f"events:{ref_external_id}"


class _Segment:
    """One run of events up to and including a conversation.closed."""

    def __init__(self, sql: Any, events: list[NormalizedEvent], raw_event: RawEvent | None,
                 result: BatchResult) -> None:
        self.sql = sql
        self.events = events
        self.raw_event = raw_event
        self.raw_event_id = raw_event.pk if raw_event is not None else None
        self.result = result
        self.now = timezone.now()


    def raw_id(self, event: NormalizedEvent) -> int | None:
        """The raw event an event came from: its own (the applier's batches), else the
        segment's."""
        return event.raw_event_id if event.raw_event_id is not None else self.raw_event_id
    def rows(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.sql.all(statement, params)

    # -- the steps, in dependency order --------------------------------------------------

    def apply(self) -> None:
        messages = [e for e in self.events if isinstance(e, MessageEvent)]
        self.known = self.messages_find(
            {(e.provider, e.provider_message_id) for e in messages if e.provider_message_id}
        )
        # Message events recorded by this segment: unknown ids, first of repeated ids.
        self.new_messages: list[MessageEvent] = []
        seen: set[tuple[str, str]] = set()
        for event in messages:
            pmid = event.provider_message_id
            if pmid and ((event.provider, pmid) in self.known or (event.provider, pmid) in seen):
                continue
            if pmid:
                seen.add((event.provider, pmid))
            self.new_messages.append(event)
        self.conversations_resolve()
        self.result.conversation_ids.update(self.where.values())
        inserted = self.messages_insert()
        self.statuses_apply(inserted)
        self.ai_steps_upsert()
        self.outcomes_upsert()
        self.lifecycle_record()
        for event in messages:  # journey_recorded lists every message event's row
            message = inserted.get(id(event))
            if message is None and event.provider_message_id:
                message = self.message_rows.get((event.provider, event.provider_message_id))
            if message is not None:
                self.result.messages.append(message)

    def messages_find(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
        if not keys:
            return {}
        providers, pmids = zip(*sorted(keys), strict=True)
        return {(r[2], r[3]): r for r in self.rows(_MESSAGES_FIND, [list(providers), list(pmids)])}

    def conversations_resolve(self) -> None:
        """Which conversation each event lands in, as the per-event path would decide it
        walking the events in order; then find or open those threads in one statement."""
        keys: set[str] = set()
        for event in self.new_messages:
            if event.conversation_external_id:
                keys.add(_conversation_key(event.conversation_external_id))
        refs = [e for e in self.events if isinstance(e, AIStepEvent | LifecycleEvent
                                                        | OutcomeEvent)]
        for event in refs:
            ref = event.conversation
            if ref.external_id:
                keys.add(_conversation_key(ref.external_id))
            elif not ref.customer_address:
                raise NormalizationError(
                    "the event names no conversation (external_id or addresses)")
        known_keys = dict(self.rows(_KEYS_FIND, [sorted(keys)])) if keys else {}

        # The walk: a conversation is an id (named by a known key), or the open thread of
        # a (channel, business, customer) triple, found or opened below.
        where: dict[int, int | Triple] = {}  # id(event) -> conversation
        named: dict[str, int | Triple] = dict(known_keys)
        threads: dict[Triple, datetime] = {}  # with the first event's time, if opened
        key_adds: dict[str, int | Triple] = {}

        def thread(triple: Triple, at: datetime) -> Triple:
            threads.setdefault(triple, at)
            return triple

        new = {id(e) for e in self.new_messages}
        for event in self.events:
            if isinstance(event, MessageEvent):
                if id(event) not in new:
                    continue
                conversation = thread(
                    (event.channel, event.business_address, event.customer_address),
                    event.occurred_at)
                where[id(event)] = conversation
                if event.conversation_external_id:
                    key = _conversation_key(event.conversation_external_id)
                    if key not in named:
                        named[key] = key_adds[key] = conversation
            elif isinstance(event, AIStepEvent | LifecycleEvent | OutcomeEvent):
                ref = event.conversation
                key = _conversation_key(ref.external_id) if ref.external_id else ""
                if key and key in named:
                    where[id(event)] = named[key]
                    continue
                conversation = thread(
                    (ref.channel, ref.business_address, ref.customer_address or ref.external_id),
                    event.occurred_at)
                where[id(event)] = conversation
                if key:
                    named[key] = key_adds[key] = conversation

        open_ids = self.conversations_find_or_open(threads) if threads else {}

        def resolved(conversation: int | Triple) -> int:
            return conversation if isinstance(conversation, int) else open_ids[conversation]

        self.where = {k: resolved(v) for k, v in where.items()}
        if key_adds:
            added = {k: resolved(v) for k, v in key_adds.items()}
            self.keys_add(added)
            # A concurrent event may have registered a key to another thread first: events
            # that name a conversation by key follow the key (as conversation_resolve does).
            current = dict(self.rows(_KEYS_FIND, [sorted(added)]))
            for event in refs:
                if event.conversation.external_id:
                    key = _conversation_key(event.conversation.external_id)
                    if key in current:
                        self.where[id(event)] = current[key]

    def conversations_open_find(self, triples: set[Triple]) -> dict[Triple, int]:
        channel, business, customer = (list(c) for c in zip(*sorted(triples), strict=True))
        found = self.rows(_CONVERSATIONS_OPEN_FIND, [channel, business, customer])
        return {(r[1], r[2], r[3]): r[0] for r in found}

    def conversations_find_or_open(self, threads: dict[Triple, datetime]) -> dict[Triple, int]:
        """The open thread of each triple, opened where there is none, in one statement.
        Opened in (channel, addresses) order: concurrent batches that open the same threads
        wait on the unique index in one order."""
        rows = [
            (*triple, "open", "", at, at, 0, {}, self.now)
            for triple, at in sorted(threads.items())
        ]
        params = _rows(_CONVERSATIONS_OPEN_NAMES, rows)
        got = {(r[1], r[2], r[3]): r[0]
               for r in self.rows(_conversations_find_or_open_sql(), params * 2)}
        missing = set(threads) - set(got)
        if missing:  # opened concurrently by another request, committed meanwhile
            got.update(self.conversations_open_find(missing))
            if missing - set(got):  # the thread we lost to was closed meanwhile: retry
                raise IntegrityError(f"open conversations {missing - set(got)} are gone")
        return got

    def keys_add(self, keys: dict[str, int]) -> None:
        names = ("conversation_id", "key", "created_at")
        rows = [(conversation_id, key[:512], self.now)
                for key, conversation_id in sorted(keys.items())]
        self.sql.run(_insert_sql(ConversationKey, names, "ON CONFLICT (key) DO NOTHING", ""),
                     _rows(names, rows))

    def participants(self) -> dict[tuple[int, str, str], int]:
        """Participant ids of the new messages' authors, created where new; the latest
        non-empty display name wins (WhatsApp profile names change)."""
        wanted: dict[tuple[int, str, str], MessageEvent] = {}
        latest_name: dict[tuple[int, str, str], str] = {}
        for event in self.new_messages:
            key = (self.where[id(event)], event.author_kind, services.message_author_id(event))
            wanted.setdefault(key, event)
            if event.author_name:
                latest_name[key] = event.author_name
        if not wanted:
            return {}
        names = _PARTICIPANT_NAMES
        rows = [(k[0], k[1], k[2], e.author_name, e.author_metadata or {})
                for k, e in sorted(wanted.items())]
        found = {(r[1], r[2], r[3]): (r[0], r[4])
                 for r in self.rows(_participants_find_or_add_sql(), _rows(names, rows) * 2)}
        missing = sorted(set(wanted) - set(found))
        if missing:  # added concurrently by another request, committed meanwhile
            conversation_ids, kinds, external_ids = (list(c) for c in zip(*missing, strict=True))
            for r in self.rows(_PARTICIPANTS_FIND, [conversation_ids, kinds, external_ids]):
                found[(r[1], r[2], r[3])] = (r[0], r[4])
        renames = sorted(
            (found[k][0], name) for k, name in latest_name.items() if found[k][1] != name
        )
        if renames:
            ids, new_names = (list(c) for c in zip(*renames, strict=True))
            self.sql.run(_PARTICIPANTS_RENAME, [ids, new_names])
        return {k: v[0] for k, v in found.items()}

    def messages_insert(self) -> dict[int, Message]:
        """INSERT the new messages (and count them on their threads); link the AI steps
        and join the status reports that came before them. Returns {id(event): Message}."""
        participant_ids = self.participants()
        # Each message's status reports in this segment, in order:
        # (position, status, at, error code, provider status).
        self.reports: dict[tuple[str, str], list[tuple[int, str, datetime, str, str]]] = {}
        position = {id(e): i for i, e in enumerate(self.events)}
        for i, e in enumerate(self.events):
            if isinstance(e, StatusEvent):
                self.reports.setdefault((e.provider, e.provider_message_id), []).append(
                    (i, e.status, e.occurred_at, e.error_code, e.provider_status))
        # Per new message: (its state as built, its reports that came before it in the
        # segment, those after it, the state with all of them).
        self.initial: dict[tuple[str, str], tuple[StatusState, list, list, StatusState]] = {}
        # Where in the segment each new message was, and its author kind (AI step links).
        self.recorded_at: dict[tuple[str, str], tuple[int, str]] = {}
        built: list[tuple[MessageEvent, dict[str, Any]]] = []
        for event in self.new_messages:
            conversation_id = self.where[id(event)]
            status = services.message_initial_status(event)
            values = services.message_values(
                event, conversation_id=conversation_id,
                participant_id=participant_ids[
                    (conversation_id, event.author_kind, services.message_author_id(event))],
                status=status, raw_event_id=self.raw_id(event), created_at=self.now,
            )
            # This segment's reports about a new message are folded into its row: no
            # UPDATE of a row this transaction has just inserted.
            # One by one, reports before the message wait and are joined when it is
            # recorded, by rank and time (only the first of each provider status is kept
            # to wait); those after it apply in order.
            pmid = values["provider_message_id"]
            if pmid is not None:
                key = (values["provider"], pmid)
                initial: StatusState = (values["status"], values["status_rank"],
                                        values["status_at"], values["error_code"])
                before: dict[str, tuple[str, datetime, str, tuple[int, int]]] = {}
                after: list[tuple[str, datetime, str]] = []
                for i, r_status, r_at, r_code, r_provider_status in self.reports.get(key, []):
                    if i < position[id(event)]:
                        # Stored after all rows that waited already: later in arrival order.
                        before.setdefault(r_provider_status, (r_status, r_at, r_code, (1, i)))
                    else:
                        after.append((r_status, r_at, r_code))
                waited = list(before.values())
                folded = _fold(initial, [*_by_rank(waited), *after])
                (values["status"], values["status_rank"], values["status_at"],
                 values["error_code"]) = folded
                self.initial[key] = (initial, waited, after, folded)
            built.append((event, values))
        inserted: dict[int, Message] = {}
        self.message_rows: dict[tuple[str, str], Message] = {}
        self.waiting: dict[int, list[tuple[str, datetime, str]]] = {}
        if built:
            rows = [tuple(values[n] for n in _MESSAGE_NAMES) for _, values in built]
            threads = {values["conversation_id"] for _, values in built}
            locks = sorted(CONVERSATION_LOCK_OFFSET + i for i in threads) if len(threads) > 1 \
                else []  # one thread: a single row lock cannot be part of a cycle
            returned = self.rows(_messages_insert_sql(), [locks, *_rows(_MESSAGE_NAMES, rows)])
            for kind, message_id, status, _, at, error_code, report_id in returned:
                if kind == "s":  # arrival order (id) breaks ties, as message_statuses_join
                    self.waiting.setdefault(message_id, []).append(
                        (status, at, error_code, (0, report_id)))
            returned = [r[1:4] for r in returned if r[0] == "m"]
            by_key = {(r[1], r[2]): r[0] for r in returned if r[2] is not None}
            # Messages without a provider id never conflict: all inserted, in input order.
            unnamed = iter(r[0] for r in returned if r[2] is None)
            for event, values in built:
                if values["provider_message_id"] is None:
                    pk = next(unnamed)
                else:
                    pk = by_key.get((values["provider"], values["provider_message_id"]))
                    if pk is None:
                        continue  # recorded concurrently through another request
                message = _saved(Message, {"id": pk, **values})
                inserted[id(event)] = message
                if message.provider_message_id:
                    self.recorded_at[(message.provider, message.provider_message_id)] = (
                        position[id(event)], message.author_kind)
                self.result.new_message_ids.append(pk)
                if message.provider_message_id:
                    self.message_rows[(message.provider, message.provider_message_id)] = message
        # Rows found again (known before, or recorded concurrently): read once, whole.
        again = {
            (e.provider, e.provider_message_id) for e in self.events
            if isinstance(e, MessageEvent) and e.provider_message_id
        } - set(self.message_rows)
        if again:
            pks = [r[0] for r in self.messages_find(again).values()]
            for message in Message.objects.filter(pk__in=pks):
                self.message_rows[(message.provider, message.provider_message_id)] = message
        self.new_links(inserted)
        return inserted

    def new_links(self, inserted: dict[int, Message]) -> None:
        """The messages statement linked AI steps and joined waiting reports in this
        transaction; a report committed concurrently is joined once more after commit
        (see services.message_statuses_join)."""
        self.result.join_after_commit.update(
            (m.provider, m.provider_message_id) for m in inserted.values()
            if m.provider_message_id and m.direction == Direction.OUTBOUND)

    def statuses_apply(self, inserted: dict[int, Message]) -> None:
        """Keep every status report, and move each message as applying its reports one by
        one would. A message inserted by this segment has its reports folded into its
        row already; only when reports that waited for it were joined (they apply first,
        by rank and time) is its row set again. Other messages move forward with a
        conditional UPDATE (`status_rank < new rank`), safe against concurrent reports."""
        reports = [e for e in self.events if isinstance(e, StatusEvent)]
        targets: dict[tuple[str, str], tuple[int, int | None, int]] = {}
        # (message id, conversation id, current rank) of every message a report names.
        for m in inserted.values():
            if m.provider_message_id:
                targets[(m.provider, m.provider_message_id)] = (
                    m.pk, m.conversation_id, m.status_rank)
        named = {(e.provider, e.provider_message_id) for e in reports} - set(targets)
        for r in self.messages_find(named).values():
            targets[(r[2], r[3])] = (r[0], r[1], r[4])
        advance: dict[int, StatusState] = {}  # existing messages: forward only
        reset: dict[int, StatusState] = {}  # rows inserted here: set as computed
        own = {m.pk for m in inserted.values()}
        for key, (pk, _, rank) in targets.items():
            if key in self.initial and pk in own:
                initial, waited, after, folded = self.initial[key]
                if pk in self.waiting:  # reports from earlier requests waited as well
                    final = _fold(initial, [*_by_rank([*self.waiting[pk], *waited]), *after])
                    if final != folded:
                        reset[pk] = final
            elif key in self.reports:
                final = _fold(("", rank, None, ""), [r[1:4] for r in self.reports[key]])
                if final[1] > rank:
                    advance[pk] = final
        rows = []
        stored: set[tuple[str, str, str]] = set()
        for e in reports:
            target = targets.get((e.provider, e.provider_message_id))
            key = (e.provider, e.provider_message_id, e.provider_status)
            if key not in stored:
                stored.add(key)
                rows.append((target[0] if target else None, target[1] if target else None,
                             e.provider, e.provider_message_id, e.status, e.provider_status,
                             e.error_code, e.error_message, e.occurred_at,
                             self.raw_id(e), e.metadata or {}))
            if not target:  # its message may be committing concurrently: join after commit
                self.result.join_after_commit.add((e.provider, e.provider_message_id))
        rows.sort(key=lambda r: (r[2], r[3], r[5]))
        updates = sorted((pk, *change) for pk, change in advance.items())
        advanced = [list(c) for c in zip(*updates, strict=True)] if updates else []
        if rows and updates:
            self.sql.run(f"WITH kept AS ({_statuses_insert_sql()}) {_STATUSES_ADVANCE}",
                         [*_rows(_STATUS_NAMES, rows), *advanced])
        elif rows:  # the usual case: the reports were about messages of this batch
            self.sql.run(_statuses_insert_sql(), _rows(_STATUS_NAMES, rows))
        elif updates:
            self.sql.run(_STATUSES_ADVANCE, advanced)
        if reset:
            changes = sorted((pk, *state) for pk, state in reset.items())
            self.sql.run(_STATUSES_SET, [list(c) for c in zip(*changes, strict=True)])

    def ai_steps_upsert(self) -> None:
        steps = [e for e in self.events if isinstance(e, AIStepEvent)]
        if not steps:
            return
        wanted = {(e.message_provider or "events", e.message_provider_id)
                  for e in steps if e.message_provider_id}
        produced = {k: r[0] for k, r in self.messages_find(wanted).items()}
        position = {id(e): i for i, e in enumerate(self.events)}
        latest: dict[tuple[int, str], AIStepEvent] = {}
        for e in steps:  # a step re-sent in one batch: the last report wins
            latest[(self.where[id(e)], e.external_id)] = e
        rows = []
        for (conversation_id, external_id), e in sorted(latest.items()):
            provider = e.message_provider or "events"
            key = (provider, e.message_provider_id)
            recorded = self.recorded_at.get(key)
            if recorded and recorded[0] > position[id(e)] and recorded[1] != AuthorKind.AI:
                # Recorded after the step, as one by one: only an AI message links back
                # to a step reported before it (message_record).
                produced.pop(key, None)
            values = {
                **{n: _column(AIStep, n).get_default() for n in _AI_STEP_NAMES},
                **e.fields,
                "conversation_id": conversation_id, "external_id": external_id,
                "occurred_at": e.occurred_at, "operation": e.operation,
                "message_id": produced.get((provider, e.message_provider_id)),
                "message_provider": provider, "message_provider_id": e.message_provider_id,
                "raw_event_id": self.raw_id(e),
            }
            rows.append(tuple(values[n] for n in _AI_STEP_NAMES))
        self.sql.run(_insert_sql(AIStep, _AI_STEP_NAMES, _upsert_conflict(_AI_STEP_NAMES), ""),
                     _rows(_AI_STEP_NAMES, rows))

    def outcomes_upsert(self) -> None:
        latest: dict[tuple[int, str], OutcomeEvent] = {}
        for e in self.events:
            if isinstance(e, OutcomeEvent):
                latest[(self.where[id(e)], e.external_id)] = e
        if not latest:
            return
        rows = []
        for (conversation_id, external_id), e in sorted(latest.items()):
            values = {
                **{n: _column(Outcome, n).get_default() for n in _OUTCOME_NAMES},
                **e.fields, "conversation_id": conversation_id, "external_id": external_id,
                "occurred_at": e.occurred_at, "raw_event_id": self.raw_id(e),
            }
            rows.append(tuple(values[n] for n in _OUTCOME_NAMES))
        self.sql.run(
            _insert_sql(Outcome, _OUTCOME_NAMES, _upsert_conflict(_OUTCOME_NAMES), ""),
            _rows(_OUTCOME_NAMES, rows))

    def lifecycle_record(self) -> None:
        """Keep handoff and conversation events (the first report of an id wins, as
        get_or_create); a newly kept conversation.closed closes its thread."""
        lifecycle = [e for e in self.events if isinstance(e, LifecycleEvent)]
        if not lifecycle:
            return
        first: dict[tuple[int, str], ConversationEvent] = {}
        for e in lifecycle:
            key = (self.where[id(e)], e.external_id)
            if key not in first:
                first[key] = ConversationEvent(
                    conversation_id=key[0], external_id=e.external_id, type=e.type,
                    occurred_at=e.occurred_at, actor_kind=e.actor_kind, actor_id=e.actor_id,
                    actor_name=e.actor_name, data=e.data, raw_event_id=self.raw_id(e),
                )
        rows = [tuple(getattr(first[k], n) for n in _EVENT_NAMES) for k in sorted(first)]
        statement = _insert_sql(
            ConversationEvent, _EVENT_NAMES,
            "ON CONFLICT (conversation_id, external_id) DO NOTHING",
            "id, conversation_id, external_id")
        created = {(r[1], r[2]): r[0] for r in self.rows(
            statement, _rows(_EVENT_NAMES, rows))}
        for key, pk in created.items():
            first[key].pk = pk
            first[key]._state.adding = False
            first[key]._state.db = connection.alias
        again = [k for k in first if k not in created]
        if again:
            lookup = models.Q()
            for conversation_id, external_id in again:
                lookup |= models.Q(conversation_id=conversation_id, external_id=external_id)
            for row in ConversationEvent.objects.filter(lookup):
                first[(row.conversation_id, row.external_id)] = row
        closes = sorted(
            (first[k].conversation_id, first[k].occurred_at) for k in created
            if first[k].type == "conversation.closed"
        )
        if closes:
            self.sql.run(_CONVERSATIONS_CLOSE, [list(c) for c in zip(*closes, strict=True)])
        for e in lifecycle:
            self.result.conversation_events.append(first[(self.where[id(e)], e.external_id)])
