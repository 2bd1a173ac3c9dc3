"""The PostgreSQL writer: one statement per table per segment (see ingest_write).

Rows travel as one JSON parameter through `json_to_recordset` (fixed statement text,
prepared once per connection): one orjson.dumps per batch instead of an array per column,
whose value-by-value binding cost more Python time than PostgreSQL took to insert.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from django.db import IntegrityError, connection, models

from .ingest_decide import NewMessage, NewParticipant, Thread
from .ingest_write import (
    EVENT_NAMES,
    FLAG_CONFLICT,
    FLAG_NAMES,
    MESSAGE_CONFLICT,
    MESSAGE_NAMES,
    STATUS_CONFLICT,
    STATUS_NAMES,
    THREAD_CONFLICT,
    Writer,
    upsert_conflict,
)
from .models import (
    AIStep,
    Conversation,
    ConversationEvent,
    ConversationKey,
    Flag,
    Message,
    MessageStatusEvent,
    Participant,
)

_CONVERSATION = Conversation._meta.db_table
_MESSAGE = Message._meta.db_table
_STATUS = MessageStatusEvent._meta.db_table
_PARTICIPANT = Participant._meta.db_table

# Concurrent batches that touch some of the same conversations would deadlock if their
# counter UPDATEs locked the rows in different orders (a multi-row UPDATE's order is the
# plan's). Each batch first takes a transaction-scoped advisory lock per conversation, in
# id order, so they queue instead. Advisory, not row locks: locking ~100 rows wrote each
# tuple and its WAL record for rows the UPDATE rewrites anyway. Offset past 2^40 so they
# never meet the e-mail threading locks (hashtext, 32-bit).
CONVERSATION_LOCK_OFFSET = 1 << 40


@functools.cache
def _insert_sql(model: type[models.Model], names: tuple[str, ...], conflict: str,
                returning: str, where: str = "") -> str:
    """INSERT of the rows of one JSON parameter (see _rows); `where` filters them (the
    rows are `r`, their columns c0, c1, ... in `names` order)."""
    columns = ", ".join(model._meta.get_field(n).column for n in names)
    defs = ", ".join(f"c{i} {model._meta.get_field(n).db_type(connection)}"
                     for i, n in enumerate(names))
    picked = ", ".join(f"c{i}" for i in range(len(names)))
    return (f"INSERT INTO {model._meta.db_table} ({columns}) "
            f"SELECT {picked} FROM json_to_recordset(%s::json) AS r({defs}) "
            + (f"WHERE {where} " if where else "") + conflict
            + (f" RETURNING {returning}" if returning else ""))


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _rows(names: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """Rows as the JSON text json_to_recordset reads: aware datetimes as RFC 3339, JSON
    columns as nested JSON; PostgreSQL casts each value to its column type."""
    keys = [f"c{i}" for i in range(len(names))]
    return orjson.dumps([{k: row[n] for k, n in zip(keys, names, strict=True)} for row in rows],
                        default=_json_value).decode()


_THREAD_NAMES = ("channel", "business_address", "customer_address", "status", "subject",
                 "started_at", "last_activity_at", "message_count", "metadata", "created_at")


def _find_or_add_sql(model: type[models.Model], names: tuple[str, ...], conflict: str,
                     returning: str, key_types: tuple[str, str, str], match: str,
                     extra: str = "") -> str:
    """Read the rows that exist already and INSERT the others ON CONFLICT DO NOTHING (most
    exist: they are not even tried). Both parts take the same JSON rows, whose first three
    columns are the key. The look-up probes the unique index per row (LATERAL, OFFSET 0:
    planned from a new table's missing statistics, a join scanned the table instead)."""
    insert = _insert_sql(model, names, conflict, returning,
                         where="NOT EXISTS (SELECT 1 FROM found f "
                               "WHERE f.c0 = r.c0 AND f.c1 = r.c1 AND f.c2 = r.c2)")
    a, b, c = key_types
    return f"""
    WITH found AS (
        SELECT t.id, k.c0, k.c1, k.c2{extra and ', t.' + extra}
        FROM json_to_recordset(%s::json) AS k(c0 {a}, c1 {b}, c2 {c})
        CROSS JOIN LATERAL (
            SELECT id{extra and ', ' + extra} FROM {model._meta.db_table} WHERE {match} OFFSET 0
        ) t
    ),
    added AS ({insert})
    SELECT id, c0, c1, c2{extra and ', ' + extra} FROM found
    UNION ALL
    SELECT {returning} FROM added"""


# Built when first used: the column types are the connection's.
_threads_sql = functools.cache(lambda: _find_or_add_sql(
    Conversation, _THREAD_NAMES, THREAD_CONFLICT,
    "id, channel, business_address, customer_address", ("text", "text", "text"),
    "channel = k.c0 AND business_address = k.c1 AND customer_address = k.c2 "
    "AND status = 'open' AND NOT (channel = 'email')"))
_THREADS_FIND = f"""
    SELECT id, channel, business_address, customer_address FROM {_CONVERSATION}
    WHERE channel = ANY(%s) AND business_address = ANY(%s) AND customer_address = ANY(%s)
      AND status = 'open' AND NOT (channel = 'email')"""
_PARTICIPANT_NAMES = ("conversation_id", "kind", "external_id", "display_name", "metadata")
_participants_sql = functools.cache(lambda: _find_or_add_sql(
    Participant, _PARTICIPANT_NAMES, "ON CONFLICT (conversation_id, kind, external_id) "
    "DO NOTHING", "id, conversation_id, kind, external_id, display_name",
    ("bigint", "text", "text"),
    "conversation_id = k.c0 AND kind = k.c1 AND external_id = k.c2", "display_name"))
_PARTICIPANTS_FIND = (
    f"SELECT id, conversation_id, kind, external_id, display_name FROM {_PARTICIPANT} "
    "WHERE conversation_id = ANY(%s) AND external_id = ANY(%s)")
_PARTICIPANTS_RENAME = f"""
    UPDATE {_PARTICIPANT} p SET display_name = k.name
    FROM unnest(%b::bigint[], %b::text[]) AS k(id, name) WHERE p.id = k.id"""
_KEY_NAMES = ("conversation_id", "key", "created_at")


@functools.cache
def _messages_sql() -> str:
    """One statement for a segment's messages. Parameters: the conversation locks (ids +
    CONVERSATION_LOCK_OFFSET, sorted), the rows (JSON), the (provider, id) pairs whose
    stored AI steps wait for them.

    - `locked`: advisory locks in id order, taken before `touched` updates any thread;
    - `inserted`: the messages (ON CONFLICT: a provider id recorded already is skipped);
    - `touched`: the threads' counters and clocks, from what was inserted only;
    - `linked`: stored AI steps reported before the message they produced.
    Returns (id, provider, provider message id) per inserted message, in row order.
    """
    insert = _insert_sql(
        Message, MESSAGE_NAMES, MESSAGE_CONFLICT,
        "id, conversation_id, provider, provider_message_id, sent_at, author_kind")
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
        UPDATE {AIStep._meta.db_table} s SET message_id = i.id
        FROM inserted i JOIN unnest(%b::text[], %b::text[]) AS l(provider, pmid)
          ON i.provider = l.provider AND i.provider_message_id = l.pmid
        WHERE s.message_id IS NULL
          AND s.message_provider = i.provider AND s.message_provider_id = i.provider_message_id
    )
    SELECT id, provider, provider_message_id FROM inserted"""


_REPORTS_JOIN = f"""
    UPDATE {_STATUS} s SET message_id = k.message_id, conversation_id = k.conversation_id
    FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::bigint[])
         AS k(provider, pmid, provider_status, message_id, conversation_id)
    WHERE s.provider = k.provider AND s.provider_message_id = k.pmid
      AND s.provider_status = k.provider_status AND s.message_id IS NULL"""
_STATUSES_ADVANCE = f"""
    UPDATE {_MESSAGE} m SET status = k.status, status_rank = k.rank, status_at = k.at,
        error_code = CASE WHEN k.error_code = '' THEN m.error_code ELSE k.error_code END
    FROM unnest(%b::bigint[], %b::text[], %b::smallint[], %b::timestamptz[], %b::text[])
         AS k(id, status, rank, at, error_code)
    WHERE m.id = k.id AND m.status_rank < k.rank"""
_CONVERSATIONS_CLOSE = (
    f"UPDATE {_CONVERSATION} c SET status = 'closed', closed_at = k.at "
    "FROM unnest(%b::bigint[], %b::timestamptz[]) AS k(id, at) "
    "WHERE c.id = k.id AND c.status = 'open'"
)


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [list(c) for c in zip(*rows, strict=True)]


class SetWriter(Writer):
    """PostgreSQL: one statement per table per segment."""

    def threads_open(self, threads: list[Thread]) -> None:
        rows = [{"channel": t.channel, "business_address": t.business_address,
                 "customer_address": t.customer_address, "status": "open", "subject": "",
                 "started_at": t.started_at, "last_activity_at": t.started_at,
                 "message_count": 0, "metadata": {}, "created_at": self.now}
                for t in threads]
        param = _rows(_THREAD_NAMES, rows)
        got = {(r[1], r[2], r[3]): r[0] for r in self.sql.all(_threads_sql(), [param, param])}
        missing = [t for t in threads
                   if (t.channel, t.business_address, t.customer_address) not in got]
        if missing:  # opened by another batch, committed while the INSERT waited for it
            columns = _columns([(t.channel, t.business_address, t.customer_address)
                                for t in missing])
            got.update({(r[1], r[2], r[3]): r[0] for r in self.sql.all(_THREADS_FIND, columns)})
        for t in threads:
            pk = got.get((t.channel, t.business_address, t.customer_address))
            if pk is None:  # the thread we lost to was closed meanwhile: retry the batch
                raise IntegrityError(f"open conversation {t} conflicts but is gone")
            self.ids[t.ref] = pk

    def keys_add(self, keys: dict[str, int]) -> dict[str, int]:
        rows = [{"conversation_id": c, "key": k, "created_at": self.now}
                for k, c in sorted(keys.items())]
        added = {r[0] for r in self.sql.all(
            _insert_sql(ConversationKey, _KEY_NAMES, "ON CONFLICT (key) DO NOTHING", "key"),
            [_rows(_KEY_NAMES, rows)])}
        if len(added) == len(keys):
            return {}
        return dict(ConversationKey.objects.filter(key__in=set(keys) - added)
                    .values_list("key", "conversation_id"))

    def participants_add(self, participants: list[NewParticipant]) -> None:
        by_key = {(self.id(p.conversation), p.kind, p.external_id): p for p in participants}
        rows = [{"conversation_id": k[0], "kind": k[1], "external_id": k[2],
                 "display_name": p.display_name, "metadata": p.metadata}
                for k, p in sorted(by_key.items())]
        param = _rows(_PARTICIPANT_NAMES, rows)
        found = {(r[1], r[2], r[3]): (r[0], r[4])
                 for r in self.sql.all(_participants_sql(), [param, param])}
        missing = set(by_key) - set(found)
        if missing:  # added by another batch, committed meanwhile
            columns = _columns(sorted(missing))
            for r in self.sql.all(_PARTICIPANTS_FIND, [columns[0], columns[2]]):
                found[(r[1], r[2], r[3])] = (r[0], r[4])
        renames = []
        for key, p in by_key.items():
            pk, name = found[key]
            self.ids[p.ref] = pk
            if p.display_name and name != p.display_name:  # the latest non-empty name wins
                renames.append((pk, p.display_name))
        if renames:
            self.rename(sorted(renames))

    def messages_insert(self, messages: Sequence[NewMessage], rows: list[dict[str, Any]],
                        step_links: list[tuple[str, str]]) -> None:
        threads = {r["conversation_id"] for r in rows}
        # One thread: its single row lock cannot be part of a cycle.
        locks = sorted(CONVERSATION_LOCK_OFFSET + i for i in threads) if len(threads) > 1 \
            else []
        links = _columns(sorted(set(step_links))) if step_links else [[], []]
        returned = self.sql.all(_messages_sql(), [locks, _rows(MESSAGE_NAMES, rows), *links])
        by_key = {(r[1], r[2]): r[0] for r in returned if r[2] is not None}
        unnamed = iter(r[0] for r in returned if r[2] is None)  # never conflict: all, in order
        ids = [next(unnamed) if r["provider_message_id"] is None
               else by_key.get((r["provider"], r["provider_message_id"])) for r in rows]
        self.messages_inserted(messages, rows, ids)

    def reports_keep(self, rows: list[dict[str, Any]]) -> None:
        rows.sort(key=lambda r: (r["provider"], r["provider_message_id"], r["provider_status"]))
        self.sql.run(_insert_sql(MessageStatusEvent, STATUS_NAMES, STATUS_CONFLICT, ""),
                     [_rows(STATUS_NAMES, rows)])

    def reports_join(self, joins: list[tuple[str, str, str, int, int]]) -> None:
        self.sql.run(_REPORTS_JOIN, _columns(sorted(joins)))

    def upsert(self, model: type[models.Model], names: tuple[str, ...],
               rows: list[dict[str, Any]]) -> None:
        self.sql.run(_insert_sql(model, names, upsert_conflict(names), ""), [_rows(names, rows)])

    def flags_raise(self, rows: list[dict[str, Any]]) -> None:
        self.sql.run(_insert_sql(Flag, FLAG_NAMES, FLAG_CONFLICT, ""), [_rows(FLAG_NAMES, rows)])

    def lifecycle_keep(self, rows: list[dict[str, Any]]) -> dict[tuple[int, str], int]:
        statement = _insert_sql(ConversationEvent, EVENT_NAMES,
                                "ON CONFLICT (conversation_id, external_id) DO NOTHING",
                                "id, conversation_id, external_id")
        return {(r[1], r[2]): r[0]
                for r in self.sql.all(statement, [_rows(EVENT_NAMES, rows)])}

    def close(self, closes: list[tuple[int, datetime]]) -> None:
        self.sql.run(_CONVERSATIONS_CLOSE, _columns(closes))

    def advance(self, changes: list[tuple[Any, ...]]) -> None:
        self.sql.run(_STATUSES_ADVANCE, _columns(changes))

    def rename(self, names: list[tuple[int, str]]) -> None:
        self.sql.run(_PARTICIPANTS_RENAME, _columns(names))
