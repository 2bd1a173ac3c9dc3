"""Flags: raise a finding once, change its status, keep each conversation's open flag rank."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import Case, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import FLAG_SEVERITY_RANK, Conversation, Flag


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

