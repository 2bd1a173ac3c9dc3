"""Flags: raise a finding once, change its status, keep each conversation's open flag rank."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import Case, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import FLAG_SEVERITY_RANK, Conversation, Flag, FlagEvent


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
    """Change a flag's status (and add a note), kept in its trail."""
    return flag_update(flag=flag, by=by, status=status, note=note)


UNSET: Any = object()


def flag_update(*, flag: Flag, by: str, status: str | None = None, note: str = "",
                owner: Any = UNSET, due_on: Any = UNSET, ticket_url: Any = UNSET,
                at: datetime | None = None) -> Flag:
    """Triage a flag: status, a note, owner (a user or None), due date, ticket link. Each
    change, and each note, is a new FlagEvent (who, when, from, to): the trail is only
    ever added to. A status set to what it already is records nothing but the note."""
    at = at or timezone.now()
    events: list[FlagEvent] = []
    fields: list[str] = []

    def change(action: str, name: str, old: Any, new: Any, shown_old: str, shown_new: str,
               ) -> None:
        if old == new:
            return
        setattr(flag, name, new)
        fields.append(name)
        events.append(FlagEvent(flag=flag, at=at, by=by, action=action,
                                from_value=shown_old[:500], to_value=shown_new[:500]))

    if status is not None and status != flag.status:
        change(FlagEvent.Action.STATUS, "status", flag.status, status, flag.status, status)
        flag.status_changed_at, flag.status_changed_by = at, by
        fields += ["status_changed_at", "status_changed_by"]
        if note:
            events[-1].note = note
    if owner is not UNSET:
        old_owner = flag.owner if flag.owner_id else None
        change(FlagEvent.Action.ASSIGN, "owner_id", flag.owner_id,
               owner.pk if owner is not None else None,
               old_owner.get_username() if old_owner else "",
               owner.get_username() if owner is not None else "")
        if fields and fields[-1] == "owner_id":
            flag.owner = owner
    if due_on is not UNSET:
        change(FlagEvent.Action.DUE, "due_on", flag.due_on, due_on,
               flag.due_on.isoformat() if flag.due_on else "",
               due_on.isoformat() if due_on else "")
    if ticket_url is not UNSET:
        change(FlagEvent.Action.TICKET, "ticket_url", flag.ticket_url, ticket_url or "",
               flag.ticket_url, ticket_url or "")
    if note:
        flag.note = note
        fields.append("note")
        if not any(e.action == FlagEvent.Action.STATUS for e in events):
            events.append(FlagEvent(flag=flag, at=at, by=by, action=FlagEvent.Action.NOTE,
                                    note=note))
    if not fields:
        return flag
    with transaction.atomic():
        flag.save(update_fields=[*dict.fromkeys(fields), "updated_at"])
        FlagEvent.objects.bulk_create(events)
    if "status" in fields:
        conversations_flag_rank_refresh(conversation_ids=[flag.conversation_id])
    return flag


def flag_trail(*, flag: Flag) -> list[FlagEvent]:
    """Every change and note of a flag, oldest first."""
    return list(flag.trail.order_by("at", "id"))


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

