"""Which reviews and answers the QA results count, written once as ORM filters: the QA
results page (audit.qa_results) adds them up, and the inbox's QA filters (audit.inbox_filters,
`qa=`, `scorecard=`, `qa_category=`) list the conversations behind each figure with the
very same filters, so a drill-down holds exactly the conversations its figure counted.

- A counted answer: not N/A, with a value.
- A counted review: submitted, with at least one counted answer, and a reviewer's latest
  such review of the conversation for that scorecard (by submission time, then id).
- A failing answer: no on yes/no, 1 or 2 on 1-5 (scoring.qa.answer_fails, as a filter).
- A failed review: a critical category failed (Review.failed).
"""

from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import Review, ReviewAnswer, ScorecardCategory

# `qa=` in the inbox: what a QA results figure counts.
QA_FILTERS = {
    "reviewed": "reviewed",
    "passed": "passed its review",
    "failed": "failed its review",
    "critical_failed": "failed a critical category",
}


def answer_fails_q(prefix: str = "") -> Q:
    """scoring.qa.answer_fails as a filter on ReviewAnswer (`prefix` for a join)."""
    return (Q(**{f"{prefix}category__scale": ScorecardCategory.Scale.YES_NO,
                 f"{prefix}value": 0})
            | Q(**{f"{prefix}category__scale": ScorecardCategory.Scale.ONE_FIVE,
                   f"{prefix}value__lte": 2}))


def answers_counted() -> QuerySet[ReviewAnswer]:
    return ReviewAnswer.objects.filter(na=False, value__isnull=False)


def _has_counted_answer() -> Exists:
    return Exists(answers_counted().filter(review=OuterRef("pk")))


def reviews_counted() -> QuerySet[Review]:
    later = Review.objects.filter(
        Q(submitted_at__gt=OuterRef("submitted_at"))
        | Q(submitted_at=OuterRef("submitted_at"), pk__gt=OuterRef("pk")),
        _has_counted_answer(),
        status=Review.Status.SUBMITTED, reviewer=OuterRef("reviewer"),
        conversation=OuterRef("conversation"), version__scorecard=OuterRef("version__scorecard"),
    )
    return Review.objects.filter(_has_counted_answer(), ~Exists(later),
                                 status=Review.Status.SUBMITTED)


def reviews_matching(*, result: str = "", scorecard: str = "",
                     category: str = "") -> QuerySet[Review]:
    """The counted reviews a QA figure is about: of a scorecard (key), answering a category
    (key); `result` (QA_FILTERS): passed / failed as the figure means it (with a category,
    the category's answer; without, the review), critical_failed (a failing answer in a
    critical category, or in `category` when it is critical)."""
    reviews = reviews_counted()
    if scorecard:
        reviews = reviews.filter(version__scorecard__key=scorecard)
    answers = answers_counted().filter(review=OuterRef("pk"))
    if category:
        answers = answers.filter(category__key=category)
    if result == "critical_failed":
        answers = answers.filter(answer_fails_q(), category__critical=True)
    elif result in ("passed", "failed") and category:
        answers = answers.filter(answer_fails_q()) if result == "failed" else \
            answers.exclude(answer_fails_q())
    elif result in ("passed", "failed"):
        reviews = reviews.filter(failed=result == "failed")
    if category or result == "critical_failed":
        reviews = reviews.filter(Exists(answers))
    return reviews
