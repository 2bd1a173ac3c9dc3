"""Daily aggregates per brand, channel, author kind and dimension, and drift detection on
them (docs/scoring.md, Consistency and Drift)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Avg, Count, StdDev
from django.utils import timezone

from conversations.conf import auditor_settings
from conversations.models import Conversation, Flag
from conversations.services import flag_raise

from .models import Score, ScoreDaily
from .stats import ewma_drift


def scores_daily_refresh(*, day: date) -> int:
    """(Re)compute the day's aggregates from the automated scores of messages sent that
    day (UTC): count, mean and population standard deviation per brand, channel, author
    kind and dimension. Idempotent."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = (
        Score.objects.filter(source=Score.Source.AUTO, subject_type=Score.SubjectType.MESSAGE,
                             occurred_at__gte=start, occurred_at__lt=start + timedelta(days=1),
                             brand__isnull=False)
        .values("brand_id", "channel", "author_kind", "name")
        .annotate(n=Count("id"), mean=Avg("value"), sd=StdDev("value"))
    )
    daily = [
        ScoreDaily(day=day, brand_id=r["brand_id"], channel=r["channel"],
                   author_kind=r["author_kind"], name=r["name"], count=r["n"],
                   mean=r["mean"], stddev=r["sd"] or 0.0)
        for r in rows
    ]
    with transaction.atomic():
        ScoreDaily.objects.filter(day=day).delete()
        ScoreDaily.objects.bulk_create(daily)
    return len(daily)


def tone_drift_detect(*, today: date, name: str = "brand_tone") -> list[Flag]:
    """EWMA of each series' daily means (brand x channel x author kind) over the recent
    window, against the mean and spread of the baseline window before it; a series whose
    EWMA leaves the control limits raises `tone_drift` (see docs/scoring.md)."""
    s = auditor_settings
    recent_start = today - timedelta(days=s.DRIFT_RECENT_DAYS - 1)
    baseline_start = recent_start - timedelta(days=s.DRIFT_BASELINE_DAYS)
    series: dict[tuple[int, str, str], list[ScoreDaily]] = {}
    for row in ScoreDaily.objects.filter(
        name=name, day__gte=baseline_start, day__lte=today,
        count__gte=s.DRIFT_MIN_DAILY_COUNT,
    ).order_by("day"):
        series.setdefault((row.brand_id, row.channel, row.author_kind), []).append(row)
    flags = []
    for (brand_id, channel, author_kind), rows in series.items():
        baseline = [r.mean for r in rows if r.day < recent_start]
        recent = [r.mean for r in rows if r.day >= recent_start]
        result = ewma_drift(
            baseline=baseline, recent=recent, lam=s.DRIFT_EWMA_LAMBDA,
            limit=s.DRIFT_CONTROL_LIMIT, min_sigma=s.DRIFT_MIN_SIGMA,
        )
        if result is None or not result["drift"]:
            continue
        segment = f"{brand_id}/{channel}/{author_kind}/{name}"
        evidence = {
            "segment": segment, "brand_id": brand_id, "channel": channel,
            "author_kind": author_kind, "dimension": name,
            "baseline_days": [str(r.day) for r in rows if r.day < recent_start],
            "recent": [{"day": str(r.day), "mean": round(r.mean, 4), "count": r.count}
                       for r in rows if r.day >= recent_start],
            **result,
        }
        anchor = _drift_anchor(segment=segment, brand_id=brand_id, channel=channel,
                               author_kind=author_kind, name=name, since=recent_start)
        if anchor is None:
            continue
        flag, _ = flag_raise(
            conversation=anchor, kind=Flag.Kind.TONE_DRIFT, severity="medium",
            subject_type=Flag.SubjectType.CONVERSATION, subject_id=anchor.pk,
            evidence=evidence,
        )
        flags.append(flag)
    return flags


def _drift_anchor(*, segment: str, brand_id: int, channel: str, author_kind: str,
                  name: str, since: date) -> Conversation | None:
    """Flags belong to a conversation: a drift is anchored on the lowest-scoring
    conversation of the recent window, and keeps that anchor while its flag is active so
    re-detection refreshes one flag instead of opening another."""
    active = Flag.objects.filter(kind=Flag.Kind.TONE_DRIFT, status__in=Flag.ACTIVE_STATUSES,
                                 evidence__segment=segment).select_related("conversation")
    flag = active.first()
    if flag is not None:
        return flag.conversation
    worst = (
        Score.objects.filter(brand_id=brand_id, channel=channel, author_kind=author_kind,
                             name=name, source=Score.Source.AUTO,
                             occurred_at__date__gte=since)
        .order_by("value", "-occurred_at").select_related("conversation").first()
    )
    return worst.conversation if worst else None


def scores_daily_roll(*, today: date | None = None) -> dict[str, Any]:
    """What the daily beat task does: refresh yesterday's and today's aggregates, then look
    for drift."""
    today = today or timezone.now().date()
    refreshed = sum(scores_daily_refresh(day=d) for d in (today - timedelta(days=1), today))
    flags = tone_drift_detect(today=today)
    return {"aggregates": refreshed, "drift_flags": len(flags)}


