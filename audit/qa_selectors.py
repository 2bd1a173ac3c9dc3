"""Reads of the QA review queues and the blind rule (issue 7).

Blind: someone who is not a QA lead sees another reviewer's answers on a conversation
(reviews, `human` Score rows, flag statuses a review set) only once their own review of
that conversation is submitted. Drafts are never shown to anyone but their author. Leads
(audit.lead_qa) see everything. Every page, API call and CSV export goes through these.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, F, Q, QuerySet

from conversations.models import Conversation, Flag
from scoring.models import Review, Score, ScorecardVersion
from scoring.qa import scorecard_default_ensure
from scoring.qa_selectors import scorecard_version_current

from .qa_models import QueueSlot, ReviewQueue
from .roles import ANNOTATE, LEAD, can

QA_NOTE_PREFIX = "QA review "  # the note scoring.qa writes on a flag a review dismissed

User = AbstractBaseUser | AnonymousUser


def is_lead(user: User) -> bool:
    return can(user, LEAD)


def _judged(user: User) -> QuerySet[Review]:
    """The conversations the user has submitted a review of."""
    return Review.objects.filter(reviewer_id=user.pk, status=Review.Status.SUBMITTED
                                 ).values("conversation_id")


def reviews_visible(*, user: User, qs: QuerySet[Review] | None = None) -> QuerySet[Review]:
    """Reviews the user may see: their own (drafts too); others' submitted ones on
    conversations the user has submitted a review of; a lead, every submitted one."""
    qs = Review.objects.all() if qs is None else qs
    own = Q(reviewer_id=user.pk)
    if is_lead(user):
        return qs.filter(own | Q(status=Review.Status.SUBMITTED))
    return qs.filter(own | Q(status=Review.Status.SUBMITTED, conversation_id__in=_judged(user)))


def scores_visible(*, user: User, qs: QuerySet[Score]) -> QuerySet[Score]:
    """Score rows without other reviewers' `human` answers the user may not see yet."""
    if is_lead(user):
        return qs
    return qs.exclude(Q(source=Score.Source.HUMAN) & ~Q(author=user.get_username())
                      & ~Q(conversation_id__in=_judged(user)))


def is_blind(*, user: User, conversation: Conversation | int) -> bool:
    """True while the user may not see other reviewers' answers on the conversation."""
    cid = conversation if isinstance(conversation, int) else conversation.pk
    return not is_lead(user) and not Review.objects.filter(
        reviewer_id=user.pk, conversation_id=cid, status=Review.Status.SUBMITTED
    ).exists()


def flag_set_by_other_review(*, flag: Flag, user: User) -> bool:
    """A flag another reviewer's submitted review dismissed (its status is their verdict)."""
    return (flag.status == Flag.Status.FALSE_POSITIVE and flag.note.startswith(QA_NOTE_PREFIX)
            and flag.status_changed_by != user.get_username())


def flag_status_q(*, user: User, status: str) -> Q:
    """Flags whose status, as `user` sees it (flags_blind_mask), is `status`: a filter by
    status must not tell a flag another review dismissed from an open one."""
    plain = Q(status=status)
    if not can(user, ANNOTATE) or is_lead(user):
        return plain
    hidden = (Q(status=Flag.Status.FALSE_POSITIVE, note__startswith=QA_NOTE_PREFIX)
              & ~Q(status_changed_by=user.get_username())
              & ~Q(conversation_id__in=_judged(user)))
    if status == Flag.Status.OPEN:
        return plain | hidden
    if status == Flag.Status.FALSE_POSITIVE:
        return plain & ~hidden
    return plain


def flags_blind_mask(*, user: User, flags: list[Flag],
                     blind: dict[int, bool] | None = None) -> list[Flag]:
    """For a blind reviewer (an annotator who has not submitted a review of the
    conversation), flags another review dismissed are shown as open, with no trace of who
    dismissed them (the objects are changed in memory only, never saved). Someone who
    cannot annotate reviews nothing, so is never blind to them. `blind` caches is_blind
    per conversation across calls (one API page)."""
    if not can(user, ANNOTATE):
        return flags
    blind = {} if blind is None else blind
    for flag in flags:
        if not flag_set_by_other_review(flag=flag, user=user):
            continue
        if flag.conversation_id not in blind:
            blind[flag.conversation_id] = is_blind(user=user, conversation=flag.conversation_id)
        if blind[flag.conversation_id]:
            flag.status = Flag.Status.OPEN
            flag.status_changed_at = None
            flag.status_changed_by = ""
            flag.note = ""
    return flags


# --- progress --------------------------------------------------------------------------------


@dataclass
class Progress:
    to_do: int = 0
    in_progress: int = 0
    done: int = 0
    items: int = 0

    @property
    def total(self) -> int:
        return self.to_do + self.in_progress + self.done

    @property
    def done_percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def started_percent(self) -> int:
        return round(100 * (self.done + self.in_progress) / self.total) if self.total else 0

    def as_dict(self) -> dict[str, int]:
        return {"to_do": self.to_do, "in_progress": self.in_progress, "done": self.done,
                "items": self.items}


_COUNTS = {
    "to_do": Count("id", filter=Q(reviewer__isnull=True)),
    "in_progress": Count("id", filter=Q(reviewer__isnull=False, done_at__isnull=True)),
    "done": Count("id", filter=Q(done_at__isnull=False)),
    "items": Count("item_id", distinct=True),
}


def queues_progress(*, queues: list[ReviewQueue]) -> dict[int, Progress]:
    """Slots to do (free), in progress (taken) and done per queue, in one query."""
    out = {q.pk: Progress() for q in queues}
    for row in (QueueSlot.objects.filter(queue__in=queues).values("queue_id")
                .order_by().annotate(**_COUNTS)):
        queue_id = row.pop("queue_id")
        out[queue_id] = Progress(**row)
    return out


@dataclass
class ReviewerProgress:
    username: str
    queue: str
    in_progress: int = 0
    done: int = 0


def reviewers_progress(*, queues: list[ReviewQueue]) -> list[ReviewerProgress]:
    """Per queue and reviewer: slots taken and not done, and done. One query."""
    names = {q.pk: q.name for q in queues}
    rows = (QueueSlot.objects.filter(queue__in=queues, reviewer__isnull=False)
            .values("queue_id", "reviewer__username").order_by()
            .annotate(in_progress=_COUNTS["in_progress"], done=_COUNTS["done"]))
    return sorted((ReviewerProgress(username=r["reviewer__username"],
                                    queue=names[r["queue_id"]], in_progress=r["in_progress"],
                                    done=r["done"]) for r in rows),
                  key=lambda p: (p.queue, p.username))


def slots_of(*, user: User, conversation: Conversation) -> list[QueueSlot]:
    """The user's slots for the conversation, open ones first."""
    return list(QueueSlot.objects.filter(reviewer_id=user.pk, item__conversation=conversation)
                .select_related("queue__scorecard", "item")
                .order_by(F("done_at").asc(nulls_first=True), "id"))


def review_version_for(*, user: User, conversation: Conversation,
                       queue: ReviewQueue | None = None) -> ScorecardVersion:
    """The scorecard version a reviewer fills for a conversation: the queue's scorecard
    (the one given, else the queue of the user's open slot, else of their latest slot):
    the version of their own review under it, else its current version. Without a
    queue: their latest review's version, else the default scorecard's current one."""
    if queue is None:
        slot = next(iter(slots_of(user=user, conversation=conversation)), None)
        queue = slot.queue if slot else None
    own = Review.objects.filter(reviewer_id=user.pk, conversation=conversation)
    if queue is not None:
        own = own.filter(version__scorecard_id=queue.scorecard_id)
    review = own.select_related("version").order_by("-updated_at").first()
    if review is not None:
        return review.version
    current = scorecard_version_current(scorecard=queue.scorecard) if queue else None
    return current or scorecard_default_ensure()


# --- the QA pages' and API's visibility --------------------------------------------------


def queues_visible(*, user: User) -> QuerySet[ReviewQueue]:
    """Queues the user sees: a lead every queue; others the queues they may take from
    (no listed reviewers, or listed among them), active or not."""
    qs = ReviewQueue.objects.select_related("scorecard").prefetch_related("reviewers")
    if is_lead(user):
        return qs
    return qs.filter(Q(reviewers__isnull=True) | Q(reviewers=user.pk)).distinct()


def reviewers_progress_visible(*, user: User, queues: list[ReviewQueue]
                               ) -> list[ReviewerProgress]:
    """Progress per reviewer: a lead everyone's, others their own only."""
    rows = reviewers_progress(queues=queues)
    if is_lead(user):
        return rows
    return [p for p in rows if p.username == user.get_username()]


# --- the agreement page's links --------------------------------------------------------------


def disagreements(*, user: User, start: Any = None, end: Any = None) -> dict[str, list[int]]:
    """Per category key: conversations whose submitted reviews answered it differently
    (N/A counts as an answer here), newest first: the items behind a low kappa or alpha.
    A lead gets every such conversation; others only those they have submitted a review
    of (the rest would point them at items they may still be handed blind)."""
    answers = Review.objects.filter(status=Review.Status.SUBMITTED)
    if not is_lead(user):
        answers = answers.filter(conversation_id__in=_judged(user))
    if start:
        answers = answers.filter(conversation__started_at__gte=start)
    if end:
        answers = answers.filter(conversation__started_at__lt=end)
    seen: dict[tuple[str, int], set[Any]] = defaultdict(set)
    for key, cid, value, na in (answers.values_list(
            "answers__category__key", "conversation_id", "answers__value", "answers__na")):
        if key is not None:
            seen[(key, cid)].add("na" if na else value)
    out: dict[str, list[int]] = defaultdict(list)
    for (key, cid), values in seen.items():
        if len(values) > 1:
            out[key].append(cid)
    return {k: sorted(v, reverse=True) for k, v in out.items()}
