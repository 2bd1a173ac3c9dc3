"""Ingest: normalized events into rows, load → decide → write, for any batch size.

    events ──ingest_load──▶ IngestState ──ingest_decide.decide──▶ Plan
           ──ingest_write (SetWriter on PostgreSQL, PortableWriter otherwise)──▶ rows
           ──▶ Ingested: the Message / ConversationEvent row of every event, for
               journey_recorded; after commit: message_recorded, late status joins

A single event is a batch of one (`message_record`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection, models, transaction
from django.utils import timezone

from .conf import auditor_settings
from .events import MessageEvent, NormalizedEvent
from .ingest_decide import Plan, decide
from .ingest_load import ingest_load
from .ingest_quality import quality_config
from .ingest_write import PortableWriter, Writer, saved
from .ingest_write_pg import SetWriter
from .models import ConversationEvent, Message, RawEvent
from .signals import message_recorded
from .sql import Statements
from .statuses import message_statuses_join_many


@dataclass
class Ingested:
    """Per message.created event its Message, per lifecycle event its ConversationEvent
    (recorded or found again, in event order), the new messages' ids and every
    conversation touched (dashboard marks)."""

    messages: list[Message] = field(default_factory=list)
    conversation_events: list[ConversationEvent] = field(default_factory=list)
    # Of those, the ids kept before this batch (a redelivery, a reprocessing).
    conversation_events_known: set[int] = field(default_factory=set)
    new_message_ids: list[int] = field(default_factory=list)
    conversation_ids: set[int] = field(default_factory=set)


def ingest(*, events: Sequence[NormalizedEvent], raw_event: RawEvent | None = None,
           writer: type[Writer] | None = None) -> Ingested:
    """Apply `events` in order, inside the caller's transaction. `raw_event`: the source
    of events that do not name theirs; `writer`: the database family's unless given."""
    now = timezone.now()
    checks = auditor_settings.QUALITY_CHECKS
    with Statements() as sql:
        state = ingest_load(sql, events, quality=(
            auditor_settings.QUALITY_CONTEXT_MESSAGES, auditor_settings.QUALITY_CONTEXT_STEPS)
            if checks else None)
        plan = decide(state, events, raw_event_id=raw_event.pk if raw_event else None,
                      now=now, window_hours=auditor_settings.EMAIL_THREAD_WINDOW_HOURS,
                      quality=quality_config(auditor_settings) if checks else None)
        if writer is None:
            writer = SetWriter if connection.vendor == "postgresql" else PortableWriter
        written = writer(sql, now)
        written.write(plan)
    result = _result(plan, written, raw_event)
    _after_commit(plan, written, result)
    return result


def message_record(*, event: MessageEvent, raw_event: RawEvent | None = None) -> Message:
    """Record one message (a batch of one); a message known by its provider id is
    returned as is. The handoff machine is not told (events_apply tells it)."""
    return ingest(events=[event], raw_event=raw_event).messages[0]


def _result(plan: Plan, w: Writer, raw_event: RawEvent | None) -> Ingested:
    result = Ingested(conversation_ids={w.id(c) for c in plan.conversations} - {None})
    new: dict[int, Message] = {}
    inserted = set(w.inserted)
    for segment in plan.segments:
        for m in segment.messages:
            if m.ref in inserted:
                message = new[m.ref] = saved(Message, {"id": w.ids[m.ref],
                                                       **w.message_rows[m.ref]})
                if raw_event is not None and message.raw_event_id == raw_event.pk:
                    message.raw_event = raw_event  # the caller's instance, not a lookup
                result.new_message_ids.append(message.pk)
    again = _by_id(Message, {w.id(ref) for ref in plan.messages if ref not in new})
    result.messages = [new[ref] if ref in new else again[w.id(ref)] for ref in plan.messages]
    events: dict[tuple[int, str], ConversationEvent] = {}
    lost = []
    found: dict[tuple[int, str], ConversationEvent] = {}
    for segment in plan.segments:
        for key, values in segment.lifecycle.items():
            pk = w.lifecycle_ids.get(key)
            if pk is None:  # kept concurrently by another batch
                lost.append((w.id(key[0]), key[1]))
            else:
                events[key] = saved(ConversationEvent,
                                    {"id": pk, **w.resolved(values, "conversation_id")})
    if lost:
        q = models.Q()
        for conversation_id, external_id in lost:
            q |= models.Q(conversation_id=conversation_id, external_id=external_id)
        found = {(e.conversation_id, e.external_id): e for e in ConversationEvent.objects.filter(q)}
    stored = _by_id(ConversationEvent, {pk for kind, pk in plan.lifecycle if kind == "id"})
    for kind, value in plan.lifecycle:
        if kind == "id":
            result.conversation_events.append(stored[value])
            result.conversation_events_known.add(value)
        elif value in events:
            result.conversation_events.append(events[value])
        else:
            kept = found[(w.id(value[0]), value[1])]
            result.conversation_events.append(kept)
            result.conversation_events_known.add(kept.pk)
    return result


def _by_id(model: type[models.Model], ids: set[int | None]) -> dict[int, models.Model]:
    ids.discard(None)
    return {row.pk: row for row in model.objects.filter(pk__any=ids)} if ids else {}


def _after_commit(plan: Plan, w: Writer, result: Ingested) -> None:
    # A report and its message committed concurrently: the last after-commit join sees both.
    pairs = set(plan.join_after_commit)
    new_ids = set(result.new_message_ids)
    # Any new message, inbound too: a report names a message, whichever way it went.
    pairs.update((m.provider, m.provider_message_id) for m in result.messages
                 if m.pk in new_ids and m.provider_message_id)
    if pairs:
        ordered = sorted(pairs)
        transaction.on_commit(lambda: message_statuses_join_many(pairs=ordered), robust=True)
    if result.new_message_ids:
        new_ids = list(result.new_message_ids)

        def recorded() -> None:
            # Once per batch: receivers queue work per batch, not per message.
            message_recorded.send(sender=Message, message_id=new_ids[0], message_ids=new_ids)

        transaction.on_commit(recorded, robust=True)
