"""Write: a Plan (ingest_decide) into rows, one writer per database family.

    Writer.write(plan), per segment, in this order:
      threads opened      the one-open-thread index decides races (ON CONFLICT DO NOTHING,
                          then the winner's row is read); e-mail threads (outside that
                          index) are serialized by ingest_load's advisory lock
      keys                ON CONFLICT DO NOTHING; a key taken meanwhile by another thread
                          makes the batch a database error: retried, it decides again
      participants        ON CONFLICT DO NOTHING (+ the winner's row)
      messages            ON CONFLICT DO NOTHING; counters and clocks of their threads from
                          the rows inserted, with database arithmetic (count + n,
                          GREATEST/LEAST); stored AI steps waiting for them linked
      status reports      ON CONFLICT DO NOTHING; stored waiting reports joined
      AI steps, outcomes  upserted (ON CONFLICT DO UPDATE): the last report wins
      lifecycle events    ON CONFLICT DO NOTHING; `conversation.closed` closes its thread
    then, once: messages recorded earlier moved forward (`WHERE status_rank < new rank`,
    never backwards), participants renamed, and the answer-quality flags raised (ON
    CONFLICT on the one-active-flag index DO UPDATE: an active finding is refreshed).

`PortableWriter` (here) runs one statement per row in the SQL PostgreSQL and SQLite (3.35+)
share; `ingest_write_pg.SetWriter` one statement per table per segment on PostgreSQL.
Both write the same rows (tests/conversations/test_events_batch.py runs both on
PostgreSQL).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, OperationalError, connection, models
from django.db.models.base import ModelState

from .customers_write import customers_write
from .flags import conversations_flag_rank_refresh
from .ingest_decide import NewMessage, NewParticipant, Plan, Segment, Thread
from .models import (
    AIStep,
    Channel,
    Conversation,
    ConversationEvent,
    ConversationKey,
    Flag,
    Message,
    MessageStatusEvent,
    Outcome,
    Participant,
)
from .sql import Statements, db_value


def _names(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields if not f.primary_key)


MESSAGE_NAMES = _names(Message)
STATUS_NAMES = _names(MessageStatusEvent)
AI_STEP_NAMES = _names(AIStep)
OUTCOME_NAMES = _names(Outcome)
EVENT_NAMES = _names(ConversationEvent)
_DEFAULTS = {model: {f.attname: f.get_default() for f in model._meta.concrete_fields}
             for model in (AIStep, Outcome)}


def saved(model: type[models.Model], values: dict[str, Any]) -> Any:
    """An instance of a row just written, from its column values by attname, built as
    unpickling builds one (no Model.__init__: ~100 messages a batch)."""
    instance = model.__new__(model)
    instance.__dict__.update(values)
    instance._state = ModelState()
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


class KeyTaken(OperationalError):
    """A conversation key was registered to another thread concurrently: a database
    error, so the applier retries the batch, which then decides from the key."""


class Writer:
    """What both writers share: turning the plan's refs into ids, and the order."""

    def __init__(self, sql: Statements, now: datetime) -> None:
        self.sql = sql
        self.now = now
        self.ids: dict[int, int] = {}  # ref -> id (threads, participants, messages)
        self.inserted: list[int] = []  # new message refs, in plan order
        self.lifecycle_ids: dict[tuple[int, str], int] = {}  # (conversation ref, ext) -> id
        self.conversation_of: dict[int, int] = {}  # new message ref -> conversation id
        self.message_rows: dict[int, dict[str, Any]] = {}  # new message ref -> its columns
        self.customers: set[int] = set()  # customers the batch linked or merged

    def id(self, ref: int | None) -> int | None:
        if ref is None or ref > 0:
            return ref
        return self.ids.get(ref)

    def write(self, plan: Plan) -> None:
        for segment in plan.segments:
            self.segment(segment)
        if plan.advances:
            self.advance(sorted((pk, *state) for pk, state in plan.advances.items()))
        if plan.renames:
            self.rename(sorted(plan.renames.items()))
        if plan.customers:
            self.customers = customers_write(plan.customers, self.id, self.now)
        if plan.flags:
            self.flags(plan)

    def flags(self, plan: Plan) -> None:
        """Answer-quality flags: raised, or the active flag of the same finding refreshed
        (evidence and severity), as flags.flag_raise does; then the conversations' rank."""
        rows: dict[tuple[str, str, int], dict[str, Any]] = {}
        for f in plan.flags:
            conversation, subject = self.id(f.conversation), self.id(f.subject)
            if conversation is None or subject is None:  # lost to a concurrent batch
                continue
            rows[(f.kind, f.subject_type, subject)] = {  # the last finding of a subject wins
                "conversation_id": conversation, "kind": f.kind, "severity": f.severity,
                "status": "open", "subject_type": f.subject_type, "subject_id": subject,
                "evidence": self.evidence_resolved(f.evidence), "raised_at": f.raised_at,
                "updated_at": self.now, "status_changed_by": "", "note": "", "ticket_url": ""}
        if rows:
            self.flags_raise([rows[k] for k in sorted(rows)])
            conversations_flag_rank_refresh(
                conversation_ids={r["conversation_id"] for r in rows.values()})

    def evidence_resolved(self, value: Any, key: str = "") -> Any:
        """Evidence naming this batch's messages by ref, with their ids."""
        if isinstance(value, dict):
            return {k: self.evidence_resolved(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.evidence_resolved(v) for v in value]
        if key in EVIDENCE_REFS and isinstance(value, int):
            return self.id(value)
        return value

    def segment(self, s: Segment) -> None:
        email = [t for t in s.threads if t.channel == Channel.EMAIL]
        threads = sorted((t for t in s.threads if t.channel != Channel.EMAIL),
                         key=lambda t: (t.channel, t.business_address, t.customer_address))
        if threads:
            self.threads_open(threads)
        for t in email:  # no unique index: opened plainly, under ingest_load's lock
            self.ids[t.ref] = Conversation.objects.create(
                channel=t.channel, business_address=t.business_address,
                customer_address=t.customer_address, subject=t.subject,
                started_at=t.started_at, last_activity_at=t.started_at).pk
        if s.keys:
            wanted = {key: self.id(ref) for key, ref in s.keys.items()}
            taken = {k: c for k, c in self.keys_add(wanted).items() if wanted[k] != c}
            if taken:
                raise KeyTaken(f"conversation keys registered concurrently: {sorted(taken)}")
        if s.participants:
            self.participants_add(s.participants)
        if s.messages:
            rows = []
            for m in s.messages:
                values = dict(m.values)
                values["conversation_id"] = self.id(values["conversation_id"])
                values["participant_id"] = self.id(values["participant_id"])
                rows.append(values)
            self.messages_insert(s.messages, rows, s.step_links)
        if s.reports:
            self.reports_keep([self.resolved(r, "message_id", "conversation_id")
                               for r in s.reports])
        joins = [(p, pmid, ps, self.ids[ref], self.conversation_of[ref])
                 for p, pmid, ps, ref in s.report_joins if ref in self.ids]
        if joins:
            self.reports_join(joins)
        if s.steps:
            self.upsert(AIStep, AI_STEP_NAMES, [
                {**_DEFAULTS[AIStep], **self.resolved(row, "conversation_id", "message_id")}
                for _, row in sorted(s.steps.items(), key=lambda kv: (self.id(kv[0][0]), kv[0][1]))
            ])
        if s.outcomes:
            self.upsert(Outcome, OUTCOME_NAMES, [
                {**_DEFAULTS[Outcome], **self.resolved(row, "conversation_id")}
                for _, row in sorted(s.outcomes.items(),
                                     key=lambda kv: (self.id(kv[0][0]), kv[0][1]))])
        if s.lifecycle:
            by_id = {(self.id(c), ext): (c, ext) for c, ext in s.lifecycle}
            created = self.lifecycle_keep([self.resolved(s.lifecycle[by_id[k]], "conversation_id")
                                           for k in sorted(by_id)])
            for k, pk in created.items():
                self.lifecycle_ids[by_id[k]] = pk
            closes = sorted((self.id(c), at) for c, ext, at in s.closes
                            if (self.id(c), ext) in created)
            if closes:
                self.close(closes)

    def resolved(self, row: dict[str, Any], *names: str) -> dict[str, Any]:
        row = dict(row)
        for name in names:
            row[name] = self.id(row[name])
        return row

    def messages_inserted(self, messages: Sequence[NewMessage], rows: list[dict[str, Any]],
                          ids: list[int | None]) -> None:
        """Record which of `messages` were inserted (ids; None: recorded concurrently,
        read now and treated as found again)."""
        lost = {}
        for m, row, pk in zip(messages, rows, ids, strict=True):
            if pk is None:
                lost[(row["provider"], row["provider_message_id"])] = m.ref
                continue
            self.ids[m.ref] = pk
            self.message_rows[m.ref] = row
            self.conversation_of[m.ref] = row["conversation_id"]
            self.inserted.append(m.ref)
        if lost:
            for pk, conversation_id, provider, pmid in Message.objects.filter(
                    provider__in={k[0] for k in lost},
                    provider_message_id__in={k[1] for k in lost}).values_list(
                    "pk", "conversation_id", "provider", "provider_message_id"):
                if (provider, pmid) in lost:
                    self.ids[lost[(provider, pmid)]] = pk
                    self.conversation_of[lost[(provider, pmid)]] = conversation_id

    # -- per database family ------------------------------------------------------------

    def threads_open(self, threads: list[Thread]) -> None:
        raise NotImplementedError

    def keys_add(self, keys: dict[str, int]) -> dict[str, int]:
        """Insert keys; return those that existed already, with their conversation."""
        raise NotImplementedError

    def participants_add(self, participants: list[NewParticipant]) -> None:
        raise NotImplementedError

    def messages_insert(self, messages: Sequence[NewMessage], rows: list[dict[str, Any]],
                        step_links: list[tuple[str, str]]) -> None:
        raise NotImplementedError

    def reports_keep(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def reports_join(self, joins: list[tuple[str, str, str, int, int]]) -> None:
        raise NotImplementedError

    def upsert(self, model: type[models.Model], names: tuple[str, ...],
               rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def lifecycle_keep(self, rows: list[dict[str, Any]]) -> dict[tuple[int, str], int]:
        """Insert lifecycle events; return the ids of those inserted."""
        raise NotImplementedError

    def close(self, closes: list[tuple[int, datetime]]) -> None:
        raise NotImplementedError

    def advance(self, changes: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def rename(self, names: list[tuple[int, str]]) -> None:
        raise NotImplementedError

    def flags_raise(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError


def upsert_conflict(names: Sequence[str]) -> str:
    """Re-sent AI steps and outcomes are updated in place: the last report wins."""
    updated = [n for n in names if n not in ("conversation_id", "external_id")]
    return "ON CONFLICT (conversation_id, external_id) DO UPDATE SET " + ", ".join(
        f"{n} = EXCLUDED.{n}" for n in updated)


# The conflict target repeats the conversation_one_open_thread predicate word for word.
THREAD_CONFLICT = (
    "ON CONFLICT (channel, business_address, customer_address) "
    "WHERE (status = 'open' AND NOT (channel = 'email')) DO NOTHING"
)
MESSAGE_CONFLICT = (
    "ON CONFLICT (provider, provider_message_id) WHERE provider_message_id IS NOT NULL "
    "DO NOTHING"
)
STATUS_CONFLICT = "ON CONFLICT (provider, provider_message_id, provider_status) DO NOTHING"
# The flag_one_active_per_finding predicate, word for word: an active flag is refreshed.
FLAG_CONFLICT = (
    "ON CONFLICT (kind, subject_type, subject_id) WHERE status IN ('open', 'acknowledged') "
    "DO UPDATE SET severity = EXCLUDED.severity, evidence = EXCLUDED.evidence, "
    "updated_at = EXCLUDED.updated_at"
)
FLAG_NAMES = ("conversation_id", "kind", "severity", "status", "subject_type", "subject_id",
              "evidence", "raised_at", "updated_at", "status_changed_by", "note", "ticket_url")
EVIDENCE_REFS = frozenset({"message", "injection_message"})


@functools.cache
def _insert(model: type[models.Model], names: tuple[str, ...], conflict: str,
            returning: str) -> str:
    return (f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) "
            f"VALUES ({', '.join(['%s'] * len(names))}) {conflict}"
            + (f" RETURNING {returning}" if returning else ""))


class PortableWriter(Writer):
    """One statement per row, in SQL PostgreSQL and SQLite share (SQLite's writers are
    serialized anyway: IMMEDIATE transactions)."""

    def row(self, model: type[models.Model], names: tuple[str, ...], values: dict[str, Any],
            conflict: str = "", returning: str = "") -> tuple[Any, ...] | None:
        params = [db_value(model, n, values[n]) for n in names]
        return self.sql.one(_insert(model, names, conflict, returning), params) \
            if returning else self.sql.run(_insert(model, names, conflict, ""), params)

    def threads_open(self, threads: list[Thread]) -> None:
        names = ("channel", "business_address", "customer_address", "status", "subject",
                 "started_at", "last_activity_at", "message_count", "metadata", "created_at")
        for t in threads:
            triple = [t.channel, t.business_address, t.customer_address]
            row = self.row(Conversation, names, {
                "channel": t.channel, "business_address": t.business_address,
                "customer_address": t.customer_address, "status": "open", "subject": "",
                "started_at": t.started_at, "last_activity_at": t.started_at,
                "message_count": 0, "metadata": {}, "created_at": self.now,
            }, THREAD_CONFLICT, "id") or self.sql.one(
                f"SELECT id FROM {Conversation._meta.db_table} WHERE channel = %s AND "
                "business_address = %s AND customer_address = %s AND status = 'open'", triple)
            if row is None:  # the thread we lost to was closed meanwhile: retry the batch
                raise IntegrityError(f"open conversation {triple} conflicts but is gone")
            self.ids[t.ref] = row[0]

    def keys_add(self, keys: dict[str, int]) -> dict[str, int]:
        names = ("conversation_id", "key", "created_at")
        existing = {}
        for key, conversation_id in sorted(keys.items()):
            if self.row(ConversationKey, names, {"conversation_id": conversation_id,
                                                  "key": key, "created_at": self.now},
                        "ON CONFLICT (key) DO NOTHING", "id") is None:
                existing[key] = ConversationKey.objects.get(key=key).conversation_id
        return existing

    def participants_add(self, participants: list[NewParticipant]) -> None:
        names = ("conversation_id", "kind", "external_id", "display_name", "metadata")
        for p in participants:
            conversation_id = self.id(p.conversation)
            row = self.row(Participant, names, {
                "conversation_id": conversation_id, "kind": p.kind,
                "external_id": p.external_id, "display_name": p.display_name,
                "metadata": p.metadata}, "ON CONFLICT (conversation_id, kind, external_id) "
                "DO NOTHING", "id")
            if row is None:  # added concurrently: the latest non-empty name wins
                found = Participant.objects.get(conversation_id=conversation_id, kind=p.kind,
                                                external_id=p.external_id)
                if p.display_name and found.display_name != p.display_name:
                    self.rename([(found.pk, p.display_name)])
                row = (found.pk,)
            self.ids[p.ref] = row[0]

    def messages_insert(self, messages: Sequence[NewMessage], rows: list[dict[str, Any]],
                        step_links: list[tuple[str, str]]) -> None:
        greatest, least = (("GREATEST", "LEAST") if connection.vendor == "postgresql"
                           else ("MAX", "MIN"))
        table = Conversation._meta.db_table
        ids: list[int | None] = []
        for values in rows:
            row = self.row(Message, MESSAGE_NAMES, values, MESSAGE_CONFLICT, "id")
            ids.append(row[0] if row else None)
            if row is None:
                continue
            at = db_value(Conversation, "last_activity_at", values["sent_at"])
            customer = values["author_kind"] == "customer"
            self.sql.run(
                f"UPDATE {table} SET message_count = message_count + 1, "
                f"last_activity_at = {greatest}(last_activity_at, %s), "
                f"started_at = {least}(started_at, %s)"
                + (f", last_customer_message_at = {greatest}("
                   "COALESCE(last_customer_message_at, %s), %s)" if customer else "")
                + " WHERE id = %s",
                [at, at, *([at, at] if customer else []), values["conversation_id"]])
        self.messages_inserted(messages, rows, ids)
        links = set(step_links)
        for values, pk in zip(rows, ids, strict=True):
            if pk is not None and (values["provider"], values["provider_message_id"]) in links:
                self.sql.run(
                    f"UPDATE {AIStep._meta.db_table} SET message_id = %s WHERE message_id IS "
                    "NULL AND message_provider = %s AND message_provider_id = %s",
                    [pk, values["provider"], values["provider_message_id"]])

    def reports_keep(self, rows: list[dict[str, Any]]) -> None:
        for values in rows:
            self.row(MessageStatusEvent, STATUS_NAMES, values, STATUS_CONFLICT)

    def reports_join(self, joins: list[tuple[str, str, str, int, int]]) -> None:
        for provider, pmid, provider_status, message_id, conversation_id in joins:
            self.sql.run(
                f"UPDATE {MessageStatusEvent._meta.db_table} SET message_id = %s, "
                "conversation_id = %s WHERE provider = %s AND provider_message_id = %s "
                "AND provider_status = %s AND message_id IS NULL",
                [message_id, conversation_id, provider, pmid, provider_status])

    def upsert(self, model: type[models.Model], names: tuple[str, ...],
               rows: list[dict[str, Any]]) -> None:
        for values in rows:
            self.row(model, names, values, upsert_conflict(names))

    def lifecycle_keep(self, rows: list[dict[str, Any]]) -> dict[tuple[int, str], int]:
        created = {}
        for values in rows:
            row = self.row(ConversationEvent, EVENT_NAMES, values,
                           "ON CONFLICT (conversation_id, external_id) DO NOTHING", "id")
            if row is not None:
                created[(values["conversation_id"], values["external_id"])] = row[0]
        return created

    def close(self, closes: list[tuple[int, datetime]]) -> None:
        for conversation_id, at in closes:
            self.sql.run(
                f"UPDATE {Conversation._meta.db_table} SET status = 'closed', closed_at = %s "
                "WHERE id = %s AND status = 'open'",
                [db_value(Conversation, "closed_at", at), conversation_id])

    def advance(self, changes: list[tuple[Any, ...]]) -> None:
        for pk, status, rank, at, code in changes:
            self.sql.run(
                f"UPDATE {Message._meta.db_table} SET status = %s, status_rank = %s, "
                "status_at = %s, error_code = CASE WHEN %s = '' THEN error_code ELSE %s END "
                "WHERE id = %s AND status_rank < %s",
                [status, rank, db_value(Message, "status_at", at), code, code, pk, rank])

    def flags_raise(self, rows: list[dict[str, Any]]) -> None:
        for values in rows:
            self.row(Flag, FLAG_NAMES, values, FLAG_CONFLICT)

    def rename(self, names: list[tuple[int, str]]) -> None:
        for pk, name in names:
            self.sql.run(f"UPDATE {Participant._meta.db_table} SET display_name = %s "
                         "WHERE id = %s", [name, pk])
