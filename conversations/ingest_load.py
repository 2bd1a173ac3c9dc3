"""Load: the state a batch of normalized events needs, in a few queries, as plain data.

Two reads whatever the batch size (fixed SQL text through conversations.sql.Statements,
prepared once per connection on PostgreSQL, where round 1 is one UNION ALL statement;
on SQLite one query per kind of row):

  round 1  messages recorded already, by (provider, provider message id), with their status;
           conversation keys (`events:<external id>`, `email:<Message-ID>`); the open
           threads of the batch's (channel, business, customer); stored status reports of
           the batch's provider ids (kept already, or waiting for their message); the open
           e-mail threads of the batch's customer + mailbox pairs (threading by subject)
  round 2  participants and lifecycle events of the conversations round 1 found
  round 3  only for a batch with an AI message or step: the last messages and AI steps of
           those conversations, for the answer-quality checks (ingest_quality_load)

E-mail threading is decided from this state, so on PostgreSQL the batch first takes an
advisory lock per customer + mailbox (until the transaction ends): two concurrent
messages of a new thread must not both decide to open it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from .events import (
    AIStepEvent,
    IdentifyEvent,
    LifecycleEvent,
    MessageEvent,
    NormalizedEvent,
    StatusEvent,
)
from .ingest_customers import address_identity, identify_identities
from .ingest_quality_load import quality_context_load
from .ingest_state import (
    EmailThread,
    IngestState,
    Key,
    KnownMessage,
    StoredReport,
    Triple,
    email_pair,
    ref_triple,
)
from .models import (
    Channel,
    Conversation,
    ConversationEvent,
    ConversationKey,
    CustomerIdentity,
    Message,
    MessageStatusEvent,
    Participant,
)
from .sql import Statements


def _aware(value: Any) -> Any:
    """SQLite hands back text or naive UTC datetimes."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _sql(name: str) -> str:
    """The load statements, by name, for this database (cached per vendor)."""
    vendor = connection.vendor
    cached = _STATEMENTS.get((vendor, name))
    if cached is None:
        builders = _PG if vendor == "postgresql" else _PORTABLE
        cached = _STATEMENTS[(vendor, name)] = builders[name]()
    return cached


def _probe(types: str, table: str, columns: str, where: str) -> str:
    """PostgreSQL: probe the index once per parameter row (LATERAL, and OFFSET 0 so the
    planner cannot flatten it into a join: planned from a new table's missing statistics,
    a join or `= ANY` on several columns scanned the whole table instead)."""
    names = [f"k{i}" for i in range(len(types.split()))]
    arrays = ", ".join(f"%b::{t}[]" for t in types.split())
    return (f"SELECT k.*, t.* FROM unnest({arrays}) AS k({', '.join(names)}) "
            f"CROSS JOIN LATERAL (SELECT {columns} FROM {table} WHERE {where} OFFSET 0) AS t")


_STATEMENTS: dict[tuple[str, str], str] = {}
_MESSAGE_COLUMNS = "id, conversation_id, status, status_rank, status_at, error_code"
_REPORT_COLUMNS = (
    "provider_status, id, status, occurred_at, error_code, message_id IS NULL AS waiting")
_PG = {
    "messages": lambda: _probe(
        "text text", Message._meta.db_table, _MESSAGE_COLUMNS,
        "provider = k.k0 AND provider_message_id = k.k1"),
    "keys": lambda: (
        f"SELECT key, conversation_id FROM {ConversationKey._meta.db_table} "
        "WHERE key = ANY(%b::text[])"),
    "threads": lambda: _probe(
        "text text text", Conversation._meta.db_table, "id",
        "channel = k.k0 AND business_address = k.k1 "
        # the predicate of conversation_one_open_thread, word for word
        "AND customer_address = k.k2 AND status = 'open' AND NOT (channel = 'email')"),
    "closed": lambda: _probe(
        "text text text", Conversation._meta.db_table, "id, closed_at",
        "channel = k.k0 AND business_address = k.k1 AND customer_address = k.k2 "
        # the predicate of the conversation_closed_thread index, word for word
        "AND status = 'closed' AND NOT (channel = 'email') ORDER BY closed_at DESC LIMIT 1"),
    "reports": lambda: _probe(
        "text text", MessageStatusEvent._meta.db_table, _REPORT_COLUMNS,
        "provider = k.k0 AND provider_message_id = k.k1"),
    "email": lambda: _probe(
        "text text", Conversation._meta.db_table,
        "id, subject, last_activity_at",
        "channel = 'email' AND status = 'open' AND business_address = k.k0 "
        "AND customer_address = k.k1"),
    "participants": lambda: _probe(
        "bigint", Participant._meta.db_table, "kind, external_id, id, display_name",
        "conversation_id = k.k0"),
    "lifecycle": lambda: _probe(
        "bigint", ConversationEvent._meta.db_table, "external_id, id",
        "conversation_id = k.k0 AND external_id = ANY(%b::text[])"),
}




def _round_one_pg() -> str:
    """PostgreSQL: round 1 in one round trip. Each part is tagged and padded to one row
    shape (tag, a, b, c, d, id, x, y, at, e, w); parameters: 2 + 2 + 1 + 3 + 3 + 2 arrays."""
    m, r, t, c, e = (_PG[n]() for n in ("messages", "reports", "threads", "closed", "email"))
    return f"""
    SELECT 'm', k0, k1, status, NULL, id, conversation_id, status_rank::bigint, status_at,
           error_code, NULL::bool FROM ({m}) AS m
    UNION ALL
    SELECT 'r', k0, k1, provider_status, status, id, NULL, NULL, occurred_at, error_code,
           waiting FROM ({r}) AS r
    UNION ALL
    SELECT 'k', key, NULL, NULL, NULL, conversation_id, NULL, NULL, NULL, NULL, NULL
    FROM {ConversationKey._meta.db_table} WHERE key = ANY(%b::text[])
    UNION ALL
    SELECT 't', k0, k1, k2, NULL, id, NULL, NULL, NULL, NULL, NULL FROM ({t}) AS t
    UNION ALL
    SELECT 'c', k0, k1, k2, NULL, id, NULL, NULL, closed_at, NULL, NULL FROM ({c}) AS c
    UNION ALL
    SELECT 'e', k0, k1, subject, NULL, id, NULL, NULL, last_activity_at, NULL, NULL
    FROM ({e}) AS e"""


def _any(column: str) -> str:
    return f"{column} IN (SELECT value FROM json_each(%s))"


_PORTABLE = {
    "messages": lambda: (
        f"SELECT provider, provider_message_id, {_MESSAGE_COLUMNS} "
        f"FROM {Message._meta.db_table} "
        f"WHERE {_any('provider')} AND {_any('provider_message_id')}"),
    "keys": lambda: (
        f"SELECT key, conversation_id FROM {ConversationKey._meta.db_table} "
        f"WHERE {_any('key')}"),
    "threads": lambda: (
        "SELECT channel, business_address, customer_address, id "
        f"FROM {Conversation._meta.db_table} WHERE {_any('channel')} "
        f"AND {_any('business_address')} AND {_any('customer_address')} "
        "AND status = 'open' AND NOT (channel = 'email')"),
    "closed": lambda: (
        "SELECT channel, business_address, customer_address, id, closed_at "
        f"FROM {Conversation._meta.db_table} WHERE {_any('channel')} "
        f"AND {_any('business_address')} AND {_any('customer_address')} "
        "AND status = 'closed' AND NOT (channel = 'email')"),
    "reports": lambda: (
        f"SELECT provider, provider_message_id, {_REPORT_COLUMNS} "
        f"FROM {MessageStatusEvent._meta.db_table} "
        f"WHERE {_any('provider')} AND {_any('provider_message_id')}"),
    "email": lambda: (
        "SELECT business_address, customer_address, id, subject, last_activity_at "
        f"FROM {Conversation._meta.db_table} WHERE channel = 'email' AND status = 'open' "
        f"AND {_any('business_address')} AND {_any('customer_address')}"),
    "participants": lambda: (
        "SELECT conversation_id, kind, external_id, id, display_name "
        f"FROM {Participant._meta.db_table} WHERE {_any('conversation_id')}"),
    "lifecycle": lambda: (
        f"SELECT conversation_id, external_id, id FROM {ConversationEvent._meta.db_table} "
        f"WHERE {_any('conversation_id')} AND {_any('external_id')}"),
}


def _columns(rows: Iterable[Sequence[Any]], width: int) -> list[Any]:
    """Parameters of a statement: PostgreSQL's one array per column (rows zipped, one
    per parameter row); SQLite's one JSON list of the distinct values per column."""
    rows = sorted(set(rows))
    if connection.vendor == "postgresql":
        return [list(c) for c in zip(*rows, strict=True)] if rows else [[]] * width
    return [json.dumps(sorted({r[i] for r in rows})) for i in range(width)]


def _round_one_read(sql: Statements, state: IngestState, message_keys: set[Key],
                    report_keys: set[Key], keys: set[str], triples: set[Triple],
                    pairs: set[tuple[str, str]]) -> None:
    cached = _STATEMENTS.get(("postgresql", "round one"))
    if cached is None:
        cached = _STATEMENTS[("postgresql", "round one")] = _round_one_pg()
    params = [*_columns(message_keys, 2), *_columns(report_keys, 2),
              *_columns(((k,) for k in keys), 1), *_columns(triples, 3), *_columns(triples, 3),
              *_columns(pairs, 2)]
    for tag, a, b, c, d, pk, x, y, at, e, w in sql.all(cached, params):
        if tag == "m":
            state.messages[(a, b)] = KnownMessage(pk, x, c, y, at, e)
        elif tag == "r":
            state.reports[(a, b, c)] = StoredReport(pk, d, at, e, bool(w))
        elif tag == "k":
            state.keys[a] = pk
        elif tag == "t":
            state.open_threads[(a, b, c)] = pk
        elif tag == "c":
            state.closed_threads[(a, b, c)] = (pk, at)
        elif (a, b) in pairs:
            state.email_threads.setdefault((a, b), []).append(EmailThread(pk, c, at))
    for threads in state.email_threads.values():
        threads.sort(key=lambda t: t.id)


def _round_one_portable(sql: Statements, state: IngestState, message_keys: set[Key],
                        report_keys: set[Key], keys: set[str], triples: set[Triple],
                        pairs: set[tuple[str, str]]) -> None:
    if message_keys:
        rows = sql.all(_sql("messages"), _columns(message_keys, 2))
        state.messages = {
            (r[0], r[1]): KnownMessage(r[2], r[3], r[4], r[5], _aware(r[6]), r[7])
            for r in rows if (r[0], r[1]) in message_keys}
    if keys:
        state.keys = dict(sql.all(_sql("keys"), _columns(((k,) for k in keys), 1)))
    if triples:
        rows = sql.all(_sql("threads"), _columns(triples, 3))
        state.open_threads = {(r[0], r[1], r[2]): r[3] for r in rows
                              if (r[0], r[1], r[2]) in triples}
        rows = sql.all(_sql("closed"), _columns(triples, 3))
        for r in sorted(rows, key=lambda r: (_aware(r[4]), r[3])):
            if (r[0], r[1], r[2]) in triples:
                state.closed_threads[(r[0], r[1], r[2])] = (r[3], _aware(r[4]))
    if report_keys:
        rows = sql.all(_sql("reports"), _columns(report_keys, 2))
        state.reports = {(r[0], r[1], r[2]): StoredReport(r[3], r[4], _aware(r[5]), r[6],
                                                          bool(r[7]))
                         for r in rows if (r[0], r[1]) in report_keys}
    if pairs:
        rows = sql.all(_sql("email"), _columns(pairs, 2))
        for r in sorted(rows, key=lambda r: r[2]):
            if (r[0], r[1]) in pairs:
                state.email_threads.setdefault((r[0], r[1]), []).append(
                    EmailThread(r[2], r[3], _aware(r[4])))


def email_locks(sql: Statements, pairs: Iterable[tuple[str, str]]) -> None:
    """Serialize e-mail threading per customer and mailbox until the transaction ends
    (PostgreSQL; SQLite writes one transaction at a time), in one order."""
    if connection.vendor == "postgresql":
        for business, customer in sorted(set(pairs)):
            sql.run("SELECT pg_advisory_xact_lock(hashtext(%s))",
                    [f"email:{business}:{customer}"])


def ingest_load(sql: Statements, events: Sequence[NormalizedEvent], *,
                quality: tuple[int, int] | None = None) -> IngestState:
    """The state `events` need (see the module docstring). `quality`: how many messages
    and AI steps per conversation the answer-quality checks read (round 3), or None."""
    message_keys: set[Key] = set()
    report_keys: set[Key] = set()
    keys: set[str] = set()
    triples: set[Triple] = set()
    pairs: set[tuple[str, str]] = set()
    for e in events:
        if isinstance(e, MessageEvent):
            if e.provider_message_id:
                message_keys.add((e.provider, e.provider_message_id))
                report_keys.add((e.provider, e.provider_message_id))
            if e.conversation_external_id:
                keys.add(f"events:{e.conversation_external_id}")
            if e.channel == Channel.EMAIL:
                pairs.add((e.business_address, e.customer_address))
                keys.update(f"email:{i}" for i in (e.provider_message_id, *e.references) if i)
            else:
                triples.add((e.channel, e.business_address, e.customer_address))
        elif isinstance(e, StatusEvent):
            message_keys.add((e.provider, e.provider_message_id))
            report_keys.add((e.provider, e.provider_message_id))
        else:
            ref = e.conversation
            if ref.external_id:
                keys.add(f"events:{ref.external_id}")
            if ref.trace_id:
                keys.add(f"trace:{ref.trace_id}")
            if isinstance(e, AIStepEvent) and e.message_provider_id:
                message_keys.add((e.message_provider or "events", e.message_provider_id))
                if e.message_provider == "email":
                    keys.add(f"email:{e.message_provider_id}")
            if ref.channel == Channel.EMAIL:
                if isinstance(e, AIStepEvent):
                    pairs.add(email_pair(ref))
            elif ref.customer_address or ref.external_id:
                triples.add(ref_triple(ref))
    state = IngestState()
    email_locks(sql, pairs)
    if sql.postgres:
        _round_one_read(sql, state, message_keys, report_keys, keys, triples, pairs)
    else:
        _round_one_portable(sql, state, message_keys, report_keys, keys, triples, pairs)
    conversations = {*state.open_threads.values(), *state.keys.values(),
                     *(t.id for ts in state.email_threads.values() for t in ts)}
    customers_load(state, events, conversations)
    # A customer's message matters too: delivered late, it belongs to the turn of a reply
    # already recorded, which is judged again (ingest_quality, "Arrival order").
    if quality is not None and any(
            isinstance(e, AIStepEvent)
            or (isinstance(e, MessageEvent) and e.author_kind in ("ai", "customer"))
            for e in events):
        state.quality = quality_context_load(
            sql, sorted(conversations | {m.conversation_id for m in state.messages.values()}),
            messages=quality[0], steps=quality[1])
    if not conversations:
        return state
    ids = _columns(((c,) for c in conversations), 1)
    if any(isinstance(e, MessageEvent) for e in events):
        rows = sql.all(_sql("participants"), ids)
        state.participants = {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}
    lifecycle = {e.external_id for e in events if isinstance(e, LifecycleEvent)}
    if lifecycle:
        rows = sql.all(_sql("lifecycle"), [*ids, *_columns(((x,) for x in lifecycle), 1)])
        state.lifecycle = {(r[0], r[1]): r[2] for r in rows}
    return state




def customers_load(state: IngestState, events: Sequence[NormalizedEvent],
                   conversations: set[int]) -> None:
    """The customers of the identities the batch's threads and identify events name; for
    identify events, the customers of the conversations found (ingest_customers)."""
    wanted: set[tuple[str, str]] = set()
    identify = False
    for e in events:
        if isinstance(e, MessageEvent):
            identity = address_identity(e.channel, e.customer_address)
        elif isinstance(e, IdentifyEvent):
            identify = True
            wanted.update(identify_identities(phone=e.phone, email=e.email,
                                              customer_id=e.customer_id))
            identity = address_identity(e.conversation.channel, e.conversation.customer_address)
        elif isinstance(e, StatusEvent):
            continue
        else:
            identity = address_identity(e.conversation.channel, e.conversation.customer_address)
        if identity is not None:
            wanted.add(identity)
    if wanted:
        by_kind: dict[str, set[str]] = {}
        for kind, value in wanted:
            by_kind.setdefault(kind, set()).add(value)
        query = Q()
        for kind, values in by_kind.items():
            query |= Q(kind=kind, value__in=values)
        state.identities = {(k, v): c for k, v, c in CustomerIdentity.objects.filter(
            query).values_list("kind", "value", "customer_id")}
    if identify and conversations:
        state.conversation_customers = dict(Conversation.objects.filter(
            pk__any=conversations, customer__isnull=False).values_list("pk", "customer_id"))
