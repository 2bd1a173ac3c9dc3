"""Writes of the QA review queues (issue 7): filling a queue from its sampling rules,
taking the next item, and submitting a review through a queue.

Keyword-only functions named <entity>_<action>; who may call them is the caller's check
(audit.annotate to take and submit, audit.lead_qa to fill). The picture is in docs/qa.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Mod
from django.utils import timezone

from conversations.models import Conversation, Flag
from scoring.models import Review, ScorecardVersion
from scoring.qa import review_submit, review_verdicts_apply

from .inbox_filters import InboxFilters, day_start, inbox_queryset
from .qa_models import QueueItem, QueueSlot, ReviewQueue

DROPPED = Flag.Kind.HANDOFF_DROPPED
# Knuth's multiplicative hash: spreads consecutive ids over 0..2^32, so `% 100` is an even
# share of them. Deterministic: a refill takes the same conversations again.
_GOLDEN = 2654435761
_SALT_SAMPLE, _SALT_DOUBLE = 7919, 104729
FILL_BATCH = 1000

log = logging.getLogger(__name__)


class QueueError(Exception):
    """A queue action refused (not one of the queue's reviewers, ...)."""


def bucket_of(*, conversation_id: int, queue_id: int, salt: int = _SALT_SAMPLE) -> int:
    """0..99, stable per queue and conversation (what `_bucket` computes in SQL)."""
    return ((conversation_id * _GOLDEN + queue_id * salt) % 2**32) % 100


def _bucket(queue_id: int, salt: int) -> Mod:
    return Mod(Mod(F("id") * _GOLDEN + queue_id * salt, 2**32), 100)


def queue_candidates(*, queue: ReviewQueue) -> QuerySet[Conversation]:
    """The conversations the queue's rules take (any rule) that pass its filters (all)."""
    qs = inbox_queryset(filters=InboxFilters(brand=queue.brand, model=queue.ai_model,
                                             prompt_version=queue.prompt_version))
    if queue.since:
        qs = qs.filter(started_at__gte=day_start(queue.since))
    if queue.until and queue.until < date.max:  # until the last day: no upper bound
        qs = qs.filter(started_at__lt=day_start(queue.until + timedelta(days=1)))
    rules = Q(pk__in=[])
    for channel, percent in (queue.channel_percent or {}).items():
        if percent:
            rules |= Q(channel=channel, sample_bucket__lt=percent)
    kinds = list(queue.flag_kinds or [])
    if queue.dropped_handoffs:
        kinds.append(DROPPED)
    if kinds:
        rules |= Exists(Flag.objects.filter(conversation=OuterRef("pk"), kind__in=kinds))
    return qs.annotate(sample_bucket=_bucket(queue.pk, _SALT_SAMPLE)).filter(rules)


def _reason(queue: ReviewQueue, kinds: set[str]) -> str:
    if queue.dropped_handoffs and DROPPED in kinds:
        return "dropped_handoff"
    for kind in queue.flag_kinds or []:
        if kind in kinds:
            return f"flag:{kind}"
    return "sample"


def queue_fill(*, queue: ReviewQueue,
               progress: Callable[[int, int], None] | None = None) -> int:
    """Add the conversations the rules take that are not in the queue yet, each once
    (unique per queue + conversation, so concurrent fills add nothing twice), with one
    slot, or two for the `double_percent` share (chosen by hash, so stable). Returns how
    many items were added."""
    have = set(queue.items.values_list("conversation_id", flat=True))
    found = [pk for pk in queue_candidates(queue=queue)
             .order_by("started_at", "pk").values_list("pk", flat=True) if pk not in have]
    added = 0
    for start in range(0, len(found), FILL_BATCH):
        ids = found[start:start + FILL_BATCH]
        kinds: dict[int, set[str]] = {}
        for cid, kind in Flag.objects.filter(conversation_id__in=ids).values_list(
                "conversation_id", "kind"):
            kinds.setdefault(cid, set()).add(kind)
        with transaction.atomic():
            QueueItem.objects.bulk_create([
                QueueItem(queue=queue, conversation_id=pk,
                          reason=_reason(queue, kinds.get(pk, set())),
                          double=bucket_of(conversation_id=pk, queue_id=queue.pk,
                                           salt=_SALT_DOUBLE) < queue.double_percent)
                for pk in ids
            ], ignore_conflicts=True)
            # ignore_conflicts returns no ids: the new items are those without slots.
            fresh = QueueItem.objects.filter(queue=queue, conversation_id__in=ids,
                                             slots__isnull=True)
            slots = [QueueSlot(item=item, queue=queue, number=n)
                     for item in fresh for n in ((1, 2) if item.double else (1,))]
            QueueSlot.objects.bulk_create(slots, ignore_conflicts=True)
            added += len({s.item_id for s in slots})
        if progress:
            progress(min(start + FILL_BATCH, len(found)), len(found))
    queue.filled_at = timezone.now()
    queue.save(update_fields=["filled_at"])
    return added


def queues_fill(*, queues: Iterable[ReviewQueue] | None = None,
                progress: Callable[[ReviewQueue, int, int], None] | None = None
                ) -> dict[str, int | str]:
    """Fill every active queue (the beat task and `fill_qa_queues`): per queue name, how
    many items were added, or the error (logged) that stopped that queue; one broken
    queue does not stop the others."""
    todo = list(queues) if queues is not None else list(ReviewQueue.objects.filter(active=True))
    out: dict[str, int | str] = {}
    for q in todo:
        try:
            out[q.name] = queue_fill(queue=q, progress=(lambda d, t, q=q: progress(q, d, t))
                                     if progress else None)
        except Exception as exc:  # noqa: BLE001 - reported per queue, the others go on
            log.exception("Filling QA queue %s (%s) failed", q.name, q.pk)
            out[q.name] = f"error: {type(exc).__name__}: {exc}"
    return out


def queue_may_take(*, queue: ReviewQueue, reviewer: AbstractBaseUser) -> bool:
    """A queue without listed reviewers is open to every reviewer."""
    listed = queue.reviewers.all()
    return not listed.exists() or listed.filter(pk=reviewer.pk).exists()


def slot_take_next(*, queue: ReviewQueue, reviewer: AbstractBaseUser) -> QueueSlot | None:
    """The reviewer's next item: their own unfinished slot first, else the oldest free
    slot of an item they hold no slot of (the second slot of a double review goes to
    someone else). Free slots are claimed under `SELECT … FOR UPDATE SKIP LOCKED`, so two
    reviewers taking at once get two different slots. None when nothing is left."""
    if not queue.active:
        raise QueueError(f"{queue.name} is not active: nothing can be taken from it.")
    if not queue_may_take(queue=queue, reviewer=reviewer):
        raise QueueError(f"{reviewer.get_username()} is not a reviewer of {queue.name}.")
    own = (QueueSlot.objects.filter(queue=queue, reviewer=reviewer, done_at__isnull=True)
           .select_related("item").order_by("item_id", "number").first())
    if own is not None:
        return own
    for _ in range(3):  # a claim lost to the same reviewer in another tab: look again
        try:
            with transaction.atomic():
                mine = QueueSlot.objects.filter(item=OuterRef("item"), reviewer=reviewer)
                # A double review needs two independent reviewers: not one who has
                # already submitted a review of the conversation outside the queue.
                reviewed = Review.objects.filter(
                    reviewer=reviewer, conversation=OuterRef("item__conversation"),
                    status=Review.Status.SUBMITTED)
                # Locks the slot row only (`of`), not the joined item.
                slot = (QueueSlot.objects.select_for_update(skip_locked=True, of=("self",))
                        .select_related("item")
                        .filter(queue=queue, reviewer__isnull=True)
                        .exclude(Exists(mine))
                        .exclude(Q(item__double=True) & Exists(reviewed))
                        .order_by("item_id", "number").first())
                if slot is None:
                    return None
                slot.reviewer = reviewer
                slot.claimed_at = timezone.now()
                slot.save(update_fields=["reviewer", "claimed_at"])
                return slot
        except IntegrityError:
            continue
    return None


def slot_release(*, slot: QueueSlot) -> None:
    """Give an unfinished slot back to the queue (a lead's action, or a reviewer's)."""
    QueueSlot.objects.filter(pk=slot.pk, done_at__isnull=True).update(reviewer=None,
                                                                     claimed_at=None)


def queue_review_submit(*, reviewer: AbstractBaseUser, conversation: Conversation,
                        version: ScorecardVersion, **content: Any) -> Review:
    """scoring.qa.review_submit, and the reviewer's open slots for the conversation (in
    any queue) done, in one transaction.

    Blind double review: while another slot of an item the reviewer holds a slot of is
    not done, the review's false-positive verdicts are recorded but not applied to the
    flags (the other reviewer would read the dismissal off the flag's status). When the
    last slot of such an item is done, the verdicts of every review of its slots are
    applied."""
    with transaction.atomic():
        # Locked: two reviewers of one item submitting at once are serialized, so the
        # second sees the first's slot done and applies both reviews' verdicts.
        items = list(QueueItem.objects.select_for_update().filter(pk__in=QueueSlot.objects
                     .filter(reviewer=reviewer, item__conversation=conversation)
                     .values("item_id")))
        others_open = QueueSlot.objects.filter(item__in=items, done_at__isnull=True).exclude(
            reviewer=reviewer).exists()
        review = review_submit(reviewer=reviewer, conversation=conversation, version=version,
                               apply_verdicts=not others_open, **content)
        QueueSlot.objects.filter(reviewer=reviewer, item__conversation=conversation,
                                 done_at__isnull=True).update(done_at=timezone.now(),
                                                              review=review)
        if not others_open:
            pending = (Review.objects.filter(queue_slots__item__in=items)
                       .exclude(pk=review.pk).select_related("reviewer").distinct())
            for other in pending:
                review_verdicts_apply(review=other)
    return review
