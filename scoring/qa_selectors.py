"""Reads of QA annotation (issue 7): scorecards and reviews, and the agreement and
calibration figures: inter-reviewer agreement per category, automated vs human
correlation, flag precision from reviewers' verdicts, and all three per week.

The statistics come from well-kept packages (scikit-learn's Cohen's kappa, the
`krippendorff` package, scipy's Pearson and Spearman); this module only gathers the data
they are computed on. How each figure is built and what its n counts: docs/qa.md.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import krippendorff
import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from conversations.models import AuthorKind, Conversation

from .models import Review, ReviewAnswer, ReviewFlagVerdict, Score, Scorecard, ScorecardVersion
from .qa import SCORE_PREFIX

# Which automated tone dimension is compared with which human scorecard category: the one
# place this mapping is declared. Automated values are the message-level scores of the
# conversation's outbound (AI and human agent) messages, averaged per conversation.
AUTO_HUMAN_PAIRS: tuple[tuple[str, str], ...] = (
    ("warmth", "empathy"),
    ("brand_tone", "brand_tone"),
    ("formality", "brand_tone"),
    ("greeting_signoff", "greeting"),
    ("greeting_signoff", "closing"),
)

# Fewest conversations a correlation is computed on (with 2 it is always +-1).
MIN_CORRELATION_N = 3


# --- scorecards and reviews --------------------------------------------------------------


def scorecard_version_current(*, scorecard: Scorecard) -> ScorecardVersion | None:
    return scorecard.versions.order_by("-number").first()


def review_get(*, reviewer: AbstractBaseUser, conversation: Conversation,
               version: ScorecardVersion) -> Review | None:
    return (Review.objects.filter(reviewer=reviewer, conversation=conversation, version=version)
            .prefetch_related("answers__category", "message_notes", "flag_verdicts").first())


def conversation_reviews(*, conversation: Conversation,
                         submitted_only: bool = True) -> QuerySet[Review]:
    """A conversation's reviews with their answers, notes and verdicts, oldest first."""
    qs = Review.objects.filter(conversation=conversation)
    if submitted_only:
        qs = qs.filter(status=Review.Status.SUBMITTED)
    return (qs.select_related("reviewer", "version__scorecard")
            .prefetch_related("answers__category", "message_notes", "flag_verdicts")
            .order_by("submitted_at", "created_at", "pk"))


# --- what the figures are computed on ----------------------------------------------------


def week_of(moment: datetime) -> date:
    """The Monday (UTC) of the week a conversation started in."""
    day = moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class _AnswerRecord:
    conversation_id: int
    week: date
    key: str
    scale: str
    reviewer_id: int
    submitted_at: datetime
    value: int


def _answer_records(*, start: datetime | None, end: datetime | None,
                    scorecard: Scorecard | None) -> list[_AnswerRecord]:
    """Answers (not N/A) of submitted reviews of conversations started in [start, end);
    of a reviewer who reviewed a conversation more than once (several versions), the
    latest answer per category."""
    qs = ReviewAnswer.objects.filter(review__status=Review.Status.SUBMITTED, na=False)
    if start is not None:
        qs = qs.filter(review__conversation__started_at__gte=start)
    if end is not None:
        qs = qs.filter(review__conversation__started_at__lt=end)
    if scorecard is not None:
        qs = qs.filter(review__version__scorecard=scorecard)
    latest: dict[tuple[int, int, str], _AnswerRecord] = {}
    for row in qs.values_list(
        "review__conversation_id", "review__conversation__started_at", "category__key",
        "category__scale", "review__reviewer_id", "review__submitted_at", "value",
    ).order_by("review__submitted_at", "review_id"):
        record = _AnswerRecord(row[0], week_of(row[1]), *row[2:])
        latest[(record.conversation_id, record.reviewer_id, record.key)] = record
    return list(latest.values())


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _agreement(records: Iterable[_AnswerRecord]) -> list[dict[str, Any]]:
    # (key, scale) -> conversation -> answers in submission order
    units: dict[tuple[str, str], dict[int, list[_AnswerRecord]]] = defaultdict(
        lambda: defaultdict(list))
    for r in records:
        units[(r.key, r.scale)][r.conversation_id].append(r)
    result = []
    for (key, scale), by_item in sorted(units.items()):
        ordinal = scale == "one_five"
        domain = [1, 2, 3, 4, 5] if ordinal else [0, 1]
        for answers in by_item.values():
            answers.sort(key=lambda r: (r.submitted_at, r.reviewer_id))
        pairs = [a for a in by_item.values() if len(a) == 2]
        multi = [a for a in by_item.values() if len(a) >= 2]
        kappa = None
        if pairs:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                kappa = _finite(cohen_kappa_score(
                    [a[0].value for a in pairs], [a[1].value for a in pairs], labels=domain,
                    weights="linear" if ordinal else None))
        alpha = None
        reviewers = sorted({r.reviewer_id for a in multi for r in a})
        if multi:
            column = {rid: i for i, rid in enumerate(reviewers)}
            data = np.full((len(reviewers), len(multi)), np.nan)
            for j, answers in enumerate(multi):
                for r in answers:
                    data[column[r.reviewer_id], j] = r.value
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                try:
                    alpha = _finite(krippendorff.alpha(
                        reliability_data=data, value_domain=domain,
                        level_of_measurement="ordinal" if ordinal else "nominal"))
                except ValueError:  # no variation the package can measure
                    alpha = None
        result.append({
            "category": key, "scale": scale,
            "cohen_kappa": kappa, "kappa_weights": "linear" if ordinal else "none",
            "kappa_n": len(pairs),
            "krippendorff_alpha": alpha, "alpha_level": "ordinal" if ordinal else "nominal",
            "alpha_n": len(multi), "alpha_values": sum(len(a) for a in multi),
            "reviewers": len(reviewers),
            "items_reviewed": len(by_item),
        })
    return result


def qa_agreement(*, start: datetime | None = None, end: datetime | None = None,
                 scorecard: Scorecard | None = None) -> list[dict[str, Any]]:
    """Inter-reviewer agreement per category (key and scale), over conversations started
    in [start, end).

    - cohen_kappa over the conversations exactly two reviewers answered (first vs second
      submission; linear weights on 1-5, unweighted on yes/no); kappa_n = those items;
    - krippendorff_alpha (ordinal on 1-5, nominal on yes/no) over every conversation two
      or more reviewers answered, any number of reviewers; alpha_n = those items,
      alpha_values = the answers in them.
    N/A answers are missing values. A figure is None when nothing or no variation is there
    to measure it on."""
    return _agreement(_answer_records(start=start, end=end, scorecard=scorecard))


@dataclass
class _Pair:
    week: date
    human: dict[str, float]
    auto: dict[str, float]


def _pair_records(*, start: datetime | None, end: datetime | None) -> dict[int, _Pair]:
    """Per reviewed conversation: the mean of the reviewers' human Scores per category
    and the mean of the outbound messages' automated Scores per dimension (of each message
    and dimension, the most recent row: an older scorer version's row does not count
    twice)."""
    human_names = {f"{SCORE_PREFIX}{h}" for _, h in AUTO_HUMAN_PAIRS}
    human = Score.objects.filter(source=Score.Source.HUMAN,
                                 subject_type=Score.SubjectType.CONVERSATION,
                                 name__in=human_names)
    if start is not None:
        human = human.filter(occurred_at__gte=start)
    if end is not None:
        human = human.filter(occurred_at__lt=end)
    sums: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    weeks: dict[int, date] = {}
    for cid, name, value, at in human.values_list("conversation_id", "name", "value",
                                                   "occurred_at"):
        sums[cid][name.removeprefix(SCORE_PREFIX)].append(value)
        weeks[cid] = week_of(at)
    pairs = {cid: _Pair(weeks[cid], {k: sum(v) / len(v) for k, v in per.items()}, {})
             for cid, per in sums.items()}
    if not pairs:
        return pairs
    auto = (
        Score.objects.filter(source=Score.Source.AUTO, subject_type=Score.SubjectType.MESSAGE,
                             conversation_id__in=list(pairs),
                             name__in={a for a, _ in AUTO_HUMAN_PAIRS},
                             author_kind__in=[AuthorKind.AI, AuthorKind.HUMAN])
        .order_by("message_id", "name", "-created_at", "-pk")
        .values_list("conversation_id", "message_id", "name", "value")
    )
    seen: set[tuple[int, str]] = set()
    values: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cid, mid, name, value in auto:
        if (mid, name) not in seen:
            seen.add((mid, name))
            values[cid][name].append(value)
    for cid, per in values.items():
        pairs[cid].auto = {k: sum(v) / len(v) for k, v in per.items()}
    return pairs


def _correlation(pairs: Iterable[_Pair]) -> list[dict[str, Any]]:
    pairs = list(pairs)
    result = []
    for auto_name, human_key in AUTO_HUMAN_PAIRS:
        xs, ys = [], []
        for p in pairs:
            if auto_name in p.auto and human_key in p.human:
                xs.append(p.auto[auto_name])
                ys.append(p.human[human_key])
        pearson = spearman = p_pearson = p_spearman = None
        if len(xs) >= MIN_CORRELATION_N:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                r = stats.pearsonr(xs, ys)
                rho = stats.spearmanr(xs, ys)
            pearson, p_pearson = _finite(r.statistic), _finite(r.pvalue)
            spearman, p_spearman = _finite(rho.statistic), _finite(rho.pvalue)
        result.append({"auto": auto_name, "human": human_key, "n": len(xs),
                       "pearson": pearson, "pearson_p": p_pearson,
                       "spearman": spearman, "spearman_p": p_spearman})
    return result


def qa_auto_human_correlation(*, start: datetime | None = None,
                              end: datetime | None = None) -> list[dict[str, Any]]:
    """For each pair of AUTO_HUMAN_PAIRS: Pearson r and Spearman rho (with p-values)
    between the conversation's mean automated score and the reviewers' mean answer (both on
    0-1), over reviewed conversations started in [start, end) that have both; n = those
    conversations. None under MIN_CORRELATION_N or when one side does not vary."""
    return _correlation(_pair_records(start=start, end=end).values())


def qa_auto_human_gap(*, start: datetime | None = None,
                      end: datetime | None = None) -> list[dict[str, Any]]:
    """For each pair of AUTO_HUMAN_PAIRS, over the reviewed conversations that have both
    (the same records as qa_auto_human_correlation): the mean automated score, the mean
    reviewers' answer (0-1) and the gap human - auto; n = those conversations."""
    pairs = list(_pair_records(start=start, end=end).values())
    result = []
    for auto_name, human_key in AUTO_HUMAN_PAIRS:
        both = [(p.auto[auto_name], p.human[human_key]) for p in pairs
                if auto_name in p.auto and human_key in p.human]
        auto = sum(a for a, _ in both) / len(both) if both else None
        human = sum(h for _, h in both) / len(both) if both else None
        result.append({"auto": auto_name, "human": human_key, "n": len(both),
                       "auto_mean": auto, "human_mean": human,
                       "gap": None if not both else human - auto})
    return result


@dataclass(frozen=True)
class _VerdictRecord:
    flag_id: int
    kind: str
    verdict: str
    week: date


def _verdict_records(*, start: datetime | None,
                     end: datetime | None) -> list[_VerdictRecord]:
    """Verdicts of submitted reviews on flags of conversations started in [start, end); of
    a reviewer who judged a flag in several reviews, the latest."""
    qs = ReviewFlagVerdict.objects.filter(review__status=Review.Status.SUBMITTED)
    if start is not None:
        qs = qs.filter(review__conversation__started_at__gte=start)
    if end is not None:
        qs = qs.filter(review__conversation__started_at__lt=end)
    latest: dict[tuple[int, int], _VerdictRecord] = {}
    for flag_id, kind, verdict, reviewer_id, started in qs.values_list(
        "flag_id", "kind", "verdict", "review__reviewer_id", "review__conversation__started_at",
    ).order_by("review__submitted_at", "review_id"):
        latest[(flag_id, reviewer_id)] = _VerdictRecord(flag_id, kind, verdict,
                                                        week_of(started))
    return list(latest.values())


def _precision(records: Sequence[_VerdictRecord]) -> list[dict[str, Any]]:
    by_kind: dict[str, list[_VerdictRecord]] = defaultdict(list)
    for r in records:
        by_kind[r.kind].append(r)
    result = []
    for kind, rows in sorted(by_kind.items()):
        confirmed = sum(r.verdict == ReviewFlagVerdict.Verdict.CONFIRMED for r in rows)
        false_positive = len(rows) - confirmed
        result.append({"kind": kind, "confirmed": confirmed, "false_positive": false_positive,
                       "n": len(rows), "flags": len({r.flag_id for r in rows}),
                       "precision": round(confirmed / len(rows), 4)})
    return result


def qa_flag_precision(*, start: datetime | None = None,
                      end: datetime | None = None) -> list[dict[str, Any]]:
    """Per flag kind: confirmed / (confirmed + false positive) over reviewers' verdicts on
    flags of conversations started in [start, end). n = verdicts (a flag two reviewers
    judged counts twice); flags = distinct flags behind them."""
    return _precision(_verdict_records(start=start, end=end))


def qa_trends(*, start: datetime | None = None, end: datetime | None = None,
              scorecard: Scorecard | None = None) -> list[dict[str, Any]]:
    """The three figures per week (Monday, UTC, of the conversation's start), oldest first:
    [{"week": date, "agreement": [...], "correlation": [...], "precision": [...]}, ...];
    only weeks with any reviewed conversation appear."""
    answers: dict[date, list[_AnswerRecord]] = defaultdict(list)
    for r in _answer_records(start=start, end=end, scorecard=scorecard):
        answers[r.week].append(r)
    pairs: dict[date, list[_Pair]] = defaultdict(list)
    for p in _pair_records(start=start, end=end).values():
        pairs[p.week].append(p)
    verdicts: dict[date, list[_VerdictRecord]] = defaultdict(list)
    for v in _verdict_records(start=start, end=end):
        verdicts[v.week].append(v)
    return [
        {"week": week, "agreement": _agreement(answers.get(week, [])),
         "correlation": _correlation(pairs.get(week, [])),
         "precision": _precision(verdicts.get(week, []))}
        for week in sorted(set(answers) | set(pairs) | set(verdicts))
    ]
