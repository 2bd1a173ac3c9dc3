"""Load: the state a batch of normalized events needs, in a few queries, as plain data.

One query per kind of row, whatever the batch size (fixed SQL text through
conversations.sql.Statements, prepared once per connection on PostgreSQL):

  round 1  messages recorded already, by (provider, provider message id), with their status;
           conversation keys (`events:<external id>`, `email:<Message-ID>`); the open
           threads of the batch's (channel, business, customer); stored status reports of
           the batch's provider ids (kept already, or waiting for their message); the open
           e-mail threads of the batch's customer + mailbox pairs (threading by subject)
  round 2  participants and lifecycle events of the conversations round 1 found

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
from django.utils.dateparse import parse_datetime

from .events import AIStepEvent, LifecycleEvent, MessageEvent, NormalizedEvent, StatusEvent
from .ingest_decide import message_author_id
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
    Message,
    MessageStatusEvent,
    Participant,
)
from .sql import Statements


def _any(column: str) -> str:
    """`column` is one of a list parameter (see _param)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)"
    return f"{column} IN (SELECT value FROM json_each(%s))"


def _param(values: Iterable[Any]) -> Any:
    values = sorted(set(values))
    return values if connection.vendor == "postgresql" else json.dumps(values)


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
        cached = _STATEMENTS[(vendor, name)] = _BUILDERS[name]()
    return cached


_STATEMENTS: dict[tuple[str, str], str] = {}
_BUILDERS = {
    "messages": lambda: (
        "SELECT provider, provider_message_id, id, conversation_id, status, status_rank, "
        f"status_at, error_code FROM {Message._meta.db_table} "
        f"WHERE {_any('provider')} AND {_any('provider_message_id')}"),
    "keys": lambda: (
        f"SELECT key, conversation_id FROM {ConversationKey._meta.db_table} "
        f"WHERE {_any('key')}"),
    "threads": lambda: (
        "SELECT channel, business_address, customer_address, id "
        f"FROM {Conversation._meta.db_table} WHERE {_any('channel')} "
        f"AND {_any('business_address')} AND {_any('customer_address')} "
        # the predicate of conversation_one_open_thread, word for word
        "AND status = 'open' AND NOT (channel = 'email')"),
    "reports": lambda: (
        "SELECT provider, provider_message_id, provider_status, id, status, occurred_at, "
        f"error_code, message_id IS NULL FROM {MessageStatusEvent._meta.db_table} "
        f"WHERE {_any('provider')} AND {_any('provider_message_id')}"),
    "email": lambda: (
        "SELECT business_address, customer_address, id, subject, last_activity_at "
        f"FROM {Conversation._meta.db_table} WHERE channel = 'email' AND status = 'open' "
        f"AND {_any('business_address')} AND {_any('customer_address')}"),
    "participants": lambda: (
        "SELECT conversation_id, kind, external_id, id, display_name "
        f"FROM {Participant._meta.db_table} "
        f"WHERE {_any('conversation_id')} AND {_any('external_id')}"),
    "lifecycle": lambda: (
        f"SELECT conversation_id, external_id, id FROM {ConversationEvent._meta.db_table} "
        f"WHERE {_any('conversation_id')} AND {_any('external_id')}"),
}


def email_locks(sql: Statements, pairs: Iterable[tuple[str, str]]) -> None:
    """Serialize e-mail threading per customer and mailbox until the transaction ends
    (PostgreSQL; SQLite writes one transaction at a time), in one order."""
    if connection.vendor == "postgresql":
        for business, customer in sorted(set(pairs)):
            sql.run("SELECT pg_advisory_xact_lock(hashtext(%s))",
                    [f"email:{business}:{customer}"])


def ingest_load(sql: Statements, events: Sequence[NormalizedEvent]) -> IngestState:
    """The state `events` need (see the module docstring)."""
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
            if isinstance(e, AIStepEvent) and e.message_provider_id:
                message_keys.add((e.message_provider or "events", e.message_provider_id))
                if e.message_provider == "email":
                    keys.add(f"email:{e.message_provider_id}")
            if ref.channel == Channel.EMAIL:
                if isinstance(e, AIStepEvent):
                    pairs.add(email_pair(ref))
            else:
                triples.add(ref_triple(ref))
    state = IngestState()
    email_locks(sql, pairs)
    if message_keys:
        rows = sql.all(_sql("messages"), [_param(k[0] for k in message_keys),
                                          _param(k[1] for k in message_keys)])
        state.messages = {
            (r[0], r[1]): KnownMessage(r[2], r[3], r[4], r[5], _aware(r[6]), r[7])
            for r in rows if (r[0], r[1]) in message_keys}
    if keys:
        state.keys = dict(sql.all(_sql("keys"), [_param(keys)]))
    if triples:
        rows = sql.all(_sql("threads"), [_param(t[i] for t in triples) for i in range(3)])
        state.open_threads = {(r[0], r[1], r[2]): r[3] for r in rows
                              if (r[0], r[1], r[2]) in triples}
    if report_keys:
        rows = sql.all(_sql("reports"), [_param(k[0] for k in report_keys),
                                         _param(k[1] for k in report_keys)])
        state.reports = {(r[0], r[1], r[2]): StoredReport(r[3], r[4], _aware(r[5]), r[6],
                                                          bool(r[7]))
                         for r in rows if (r[0], r[1]) in report_keys}
    if pairs:
        rows = sql.all(_sql("email"), [_param(p[0] for p in pairs), _param(p[1] for p in pairs)])
        for r in sorted(rows, key=lambda r: r[2]):
            if (r[0], r[1]) in pairs:
                state.email_threads.setdefault((r[0], r[1]), []).append(
                    EmailThread(r[2], r[3], _aware(r[4])))
    conversations = {*state.open_threads.values(), *state.keys.values(),
                     *(t.id for ts in state.email_threads.values() for t in ts)}
    if not conversations:
        return state
    authors = {message_author_id(e) for e in events if isinstance(e, MessageEvent)}
    if authors:
        rows = sql.all(_sql("participants"), [_param(conversations), _param(authors)])
        state.participants = {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}
    lifecycle = {e.external_id for e in events if isinstance(e, LifecycleEvent)}
    if lifecycle:
        rows = sql.all(_sql("lifecycle"), [_param(conversations), _param(lifecycle)])
        state.lifecycle = {(r[0], r[1]): r[2] for r in rows}
    return state


