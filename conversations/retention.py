"""Retention: raw events and message content older than `RETENTION_DAYS` are purged, while
every row that counts (conversations, messages with their times and statuses, AI steps'
models, tokens and cost, handoffs, flags, scores and the daily aggregates) stays, so the
dashboards and metrics of the purged period do not change.

What goes, for rows older than the cutoff:
- raw events (by `received_at`): deleted. They hold the bodies as the providers sent them.
  The rows derived from them keep working (their `raw_event` link is set to NULL); they can
  no longer be reprocessed, and a provider retry of such an old delivery would be stored
  again (providers give up after hours, not months).
- messages (by `sent_at`): body, new part, subject and media URLs emptied (media content
  types kept), `purged_at` set, so the replay can say why a body is blank.
- AI steps (by `occurred_at`): tool arguments and results, the tool error text and the
  system prompt (its hash is kept, so prompt-leak checks of new messages still work).
- flags (by `raised_at`): the quoted text in their evidence (`excerpt` and `text` values);
  every figure in the evidence stays.
- other apps clean their own copies on `content_purged` (scoring: the quoted words in
  tone-score explanations of the purged messages).

Afterwards purged conversations are left alone: handoffs_rebuild skips them and scoring
does not score purged messages again (either would rebuild findings from empty text).

Idempotent and resumable: each pass walks primary keys upwards in batches of
`batch_size`, one transaction per batch, and skips what an earlier run purged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .conf import auditor_settings
from .models import AIStep, Flag, Message, RawEvent
from .signals import content_purged

EXCERPT_KEYS = frozenset({"excerpt", "text"})
PURGED = ""


class RetentionNotConfigured(ValueError):
    pass


@dataclass
class PurgeResult:
    cutoff: datetime
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)


def retention_cutoff(*, days: int | None = None, now: datetime | None = None) -> datetime:
    days = auditor_settings.RETENTION_DAYS if days is None else days
    if days is None:
        raise RetentionNotConfigured(
            "No retention period: set HANDOFF_AUDITOR['RETENTION_DAYS'] or pass --days."
        )
    if int(days) < 1:
        raise RetentionNotConfigured(f"The retention period must be at least 1 day, not {days}.")
    return (now or timezone.now()) - timedelta(days=int(days))


def scrub_excerpts(value: Any) -> tuple[Any, bool]:
    """`value` with every string under an excerpt key emptied; True if anything changed."""
    if isinstance(value, dict):
        changed = False
        out = {}
        for key, item in value.items():
            if key in EXCERPT_KEYS and isinstance(item, str):
                out[key] = PURGED
                changed |= item != PURGED
            else:
                out[key], sub = scrub_excerpts(item)
                changed |= sub
        return out, changed
    if isinstance(value, list):
        pairs = [scrub_excerpts(item) for item in value]
        return [item for item, _ in pairs], any(sub for _, sub in pairs)
    return value, False


def _id_batches(queryset: QuerySet, batch_size: int) -> Iterator[list[int]]:
    """Primary keys of `queryset` in ascending batches, one short index-ordered query each."""
    last = 0
    while True:
        ids = list(
            queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def _message_content(cutoff: datetime) -> QuerySet:
    return Message.objects.filter(sent_at__lt=cutoff, purged_at__isnull=True)


def _ai_step_content(cutoff: datetime) -> QuerySet:
    return AIStep.objects.filter(occurred_at__lt=cutoff).filter(
        Q(tool_arguments__isnull=False) | Q(tool_result__isnull=False) | ~Q(tool_error="")
        | ~Q(system_prompt="")
    )


def retention_candidates(*, cutoff: datetime) -> dict[str, int]:
    """What a purge at `cutoff` would touch (flags: those raised before it; their evidence
    is only rewritten where it quotes text)."""
    return {
        "raw_events": RawEvent.objects.filter(received_at__lt=cutoff).count(),
        "messages": _message_content(cutoff).count(),
        "ai_steps": _ai_step_content(cutoff).count(),
        "flags": Flag.objects.filter(raised_at__lt=cutoff).count(),
    }


def retention_purge(
    *,
    cutoff: datetime,
    batch_size: int = 1000,
    dry_run: bool = False,
    on_progress: Callable[[str, int], None] | None = None,
) -> PurgeResult:
    """Purge content older than `cutoff` (see the module docstring). `on_progress(part, n)`
    is called after each batch; with `dry_run` nothing is written and the counts are those
    of `retention_candidates`."""
    result = PurgeResult(cutoff=cutoff, dry_run=dry_run)
    if dry_run:
        result.counts = retention_candidates(cutoff=cutoff)
        return result
    progress = on_progress or (lambda part, n: None)
    counts = {"messages": 0, "ai_steps": 0, "flags": 0, "raw_events": 0}
    now = timezone.now()

    for ids in _id_batches(_message_content(cutoff), batch_size):
        with transaction.atomic():
            done = Message.objects.filter(pk__in=ids, purged_at__isnull=True).select_for_update()
            messages = list(done.only("id", "media"))
            for message in messages:
                message.body = message.body_new = message.subject = PURGED
                message.media = [
                    {k: v for k, v in item.items() if k != "url"} if isinstance(item, dict) else {}
                    for item in (message.media or [])
                ]
                message.purged_at = now
            Message.objects.bulk_update(
                messages, ["body", "body_new", "subject", "media", "purged_at"]
            )
            purged_ids = [m.pk for m in messages]
            if purged_ids:
                content_purged.send(sender=Message, message_ids=purged_ids)
        counts["messages"] += len(messages)
        progress("messages", len(messages))

    for ids in _id_batches(_ai_step_content(cutoff), batch_size):
        updated = AIStep.objects.filter(pk__in=ids).update(
            tool_arguments=None, tool_result=None, tool_error=PURGED, system_prompt=PURGED
        )
        counts["ai_steps"] += updated
        progress("ai_steps", updated)

    for ids in _id_batches(Flag.objects.filter(raised_at__lt=cutoff), batch_size):
        with transaction.atomic():
            changed = []
            for flag in Flag.objects.filter(pk__in=ids).select_for_update().only("evidence"):
                flag.evidence, did = scrub_excerpts(flag.evidence)
                if did:
                    changed.append(flag)
            # bulk_update leaves updated_at alone: scrubbing is not a change of the finding.
            Flag.objects.bulk_update(changed, ["evidence"])
        counts["flags"] += len(changed)
        progress("flags", len(ids))

    for ids in _id_batches(RawEvent.objects.filter(received_at__lt=cutoff), batch_size):
        with transaction.atomic():
            RawEvent.objects.filter(pk__in=ids).delete()
        counts["raw_events"] += len(ids)
        progress("raw_events", len(ids))

    result.counts = counts
    return result
