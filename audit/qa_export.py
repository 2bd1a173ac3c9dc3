"""CSV of QA reviews: one row per submitted review and category, streamed in keyset
batches, only the reviews the user may see (the blind rule, audit.qa_selectors)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from scoring.models import Review, ReviewAnswer

from .export import CsvLines
from .masking import mask_address
from .qa_selectors import reviews_visible

BATCH = 500
HEADER = (
    "review_id", "conversation_id", "channel", "customer", "reviewer", "scorecard", "version",
    "category", "scale", "value", "na", "comment", "score_100", "failed", "submitted_at",
)


def reviews_csv_lines(*, user: AbstractBaseUser, start: datetime | None = None,
                      end: datetime | None = None, can_pii: bool = True,
                      batch: int = BATCH) -> Iterator[str]:
    writer = CsvLines()
    yield writer.row(HEADER)
    qs = reviews_visible(user=user, qs=Review.objects.filter(status=Review.Status.SUBMITTED))
    if start:
        qs = qs.filter(conversation__started_at__gte=start)
    if end:
        qs = qs.filter(conversation__started_at__lt=end)
    qs = qs.select_related("reviewer", "version__scorecard", "conversation").order_by("pk")
    after = 0
    while True:
        reviews = list(qs.filter(pk__gt=after)[:batch])
        if not reviews:
            return
        answers: dict[int, list[ReviewAnswer]] = {}
        for a in (ReviewAnswer.objects.filter(review__in=reviews).select_related("category")
                  .order_by("review_id", "category__position", "category_id")):
            answers.setdefault(a.review_id, []).append(a)
        for r in reviews:
            c = r.conversation
            common: tuple[Any, ...] = (r.pk, c.pk, c.channel,
                                       c.customer_address if can_pii
                                       else mask_address(c.customer_address, c.channel),
                                       r.reviewer.get_username(), r.version.scorecard.key,
                                       r.version.number)
            for a in answers.get(r.pk, []):
                yield writer.row((
                    *common, a.category.key, a.category.scale, "" if a.na else a.value,
                    "yes" if a.na else "no", a.comment,
                    "" if r.score_100 is None else r.score_100, "yes" if r.failed else "no",
                    r.submitted_at.isoformat() if r.submitted_at else "",
                ))
        after = reviews[-1].pk
