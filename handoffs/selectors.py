"""Reads: handoff metrics for the dashboards, per channel, queue, agent or day.

Denominators, so that no rate can pass 100% and nothing is counted twice:
- **handoff rate** = conversations with a handoff / conversations that could hand off
  (the AI took part: an AI message or AI step, or a handoff happened), both taken from
  the conversations *started* in the period. Each conversation counts once, however many
  handoffs it had. Only by channel or overall (a queue or agent exists only once a
  handoff does).
- **dropped rate**, **returned-to-AI rate** = conversations with at least one dropped
  (returned) handoff / conversations with a handoff, among the handoffs *requested* in
  the period and the group.
- **time to human** p50/p90 = request to first human reply, wall clock and business time,
  over the handoffs that reached a human.
- **SLA met per state** = waits that ended within their limit / waits decided (ended, or
  still open past their deadline); waits with no limit or still within it are undecided
  and left out.
- **stalled** = handoffs that stalled at least once.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy
from django.db import connection
from django.db.models import Aggregate, Count, Exists, F, FloatField, OuterRef, Q, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from conversations.models import AIStep, AuthorKind, Conversation, Message

from .machine import State
from .models import Handoff, Wait

GROUPS = ("channel", "queue", "agent", "day")
TOTAL = "all"


class _PercentileCont(Aggregate):
    """PostgreSQL's PERCENTILE_CONT; other databases compute it in Python (see below)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's PERCENTILE_CONT does."""
    if not values:
        return None
    return float(numpy.percentile(values, fraction * 100))


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


@dataclass
class SLAFigures:
    met: int = 0
    breached: int = 0

    @property
    def rate(self) -> float | None:
        return _rate(self.met, self.met + self.breached)


@dataclass
class HandoffMetrics:
    key: str
    handoffs: int = 0
    conversations_with_handoff: int = 0  # among handoffs requested in the period
    reached_human: int = 0
    conversations_dropped: int = 0
    conversations_returned: int = 0
    stalled: int = 0
    time_to_human_p50: float | None = None
    time_to_human_p90: float | None = None
    time_to_human_business_p50: float | None = None
    time_to_human_business_p90: float | None = None
    sla: dict[str, SLAFigures] = field(default_factory=dict)
    # Handoff rate (channel, day or overall only): conversations started in the period.
    conversations_eligible: int | None = None
    conversations_handed_off: int | None = None

    @property
    def handoff_rate(self) -> float | None:
        if self.conversations_eligible is None:
            return None
        return _rate(self.conversations_handed_off or 0, self.conversations_eligible)

    @property
    def dropped_rate(self) -> float | None:
        return _rate(self.conversations_dropped, self.conversations_with_handoff)

    @property
    def returned_rate(self) -> float | None:
        return _rate(self.conversations_returned, self.conversations_with_handoff)


def _key(group_by: str | None, prefix: str = "") -> Any:
    if group_by is None:
        return Value(TOTAL)
    if group_by == "day":
        return TruncDate(f"{prefix}requested_at", tzinfo=timezone.get_current_timezone())
    return F(f"{prefix}{'agent_id' if group_by == 'agent' else group_by}")


def handoff_metrics(
    *,
    since: datetime,
    until: datetime,
    group_by: str | None = None,
    channel: str | None = None,
    now: datetime | None = None,
) -> list[HandoffMetrics]:
    """Handoff figures for handoffs requested in [since, until), one row per group (or one
    row, key "all"). Queries: three, plus one for the handoff rate; none per group."""
    if group_by is not None and group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {GROUPS}")
    now = now or timezone.now()
    handoffs = Handoff.objects.filter(requested_at__gte=since, requested_at__lt=until)
    if channel:
        handoffs = handoffs.filter(channel=channel)
    engaged = Q(engaged_at__isnull=False)
    rows = (
        handoffs.annotate(group=_key(group_by))
        .values("group")
        .annotate(
            handoffs=Count("id"),
            conversations=Count("conversation", distinct=True),
            reached=Count("id", filter=engaged),
            dropped=Count("conversation", distinct=True, filter=Q(dropped_at__isnull=False)),
            returned=Count("conversation", distinct=True, filter=Q(state=State.RETURNED)),
            stalled=Count("id", filter=Q(stalled_count__gt=0)),
        )
        .order_by("group")
    )
    result: dict[str, HandoffMetrics] = {}
    for row in rows:
        key = str(row["group"])
        result[key] = HandoffMetrics(
            key=key,
            handoffs=row["handoffs"],
            conversations_with_handoff=row["conversations"],
            reached_human=row["reached"],
            conversations_dropped=row["dropped"],
            conversations_returned=row["returned"],
            stalled=row["stalled"],
        )
    _time_to_human(handoffs.filter(engaged), group_by, result)
    _sla(handoffs, group_by, result, now)
    if group_by in (None, "channel", "day"):
        _handoff_rate(since, until, channel, group_by, result)
    return sorted(result.values(), key=lambda m: m.key)


def _time_to_human(
    engaged: Any, group_by: str | None, result: dict[str, HandoffMetrics]
) -> None:
    fields = ("time_to_human", "time_to_human_business")
    if connection.vendor == "postgresql":
        rows = (
            engaged.annotate(group=_key(group_by))
            .values("group")
            .annotate(
                **{
                    f"{name}_{int(p * 100)}": _PercentileCont(name, p)
                    for name in fields
                    for p in (0.5, 0.9)
                }
            )
        )
        for row in rows:
            metrics = result[str(row["group"])]
            for name in fields:
                setattr(metrics, f"{name}_p50", row[f"{name}_50"])
                setattr(metrics, f"{name}_p90", row[f"{name}_90"])
        return
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in engaged.annotate(group=_key(group_by)).values("group", *fields):
        for name in fields:
            if row[name] is not None:
                values[str(row["group"])][name].append(row[name])
    for key, by_field in values.items():
        for name in fields:
            setattr(result[key], f"{name}_p50", percentile(by_field[name], 0.5))
            setattr(result[key], f"{name}_p90", percentile(by_field[name], 0.9))


def _sla(handoffs: Any, group_by: str | None, result: dict[str, HandoffMetrics],
         now: datetime) -> None:
    waits = Wait.objects.filter(handoff__in=handoffs.values("pk"), allowed_seconds__isnull=False)
    breached = Q(met=False) | Q(ended_at__isnull=True, deadline_at__lte=now)
    rows = (
        waits.annotate(group=_key(group_by, "handoff__"))
        .values("group", "kind")
        .annotate(met_n=Count("id", filter=Q(met=True)), breached_n=Count("id", filter=breached))
    )
    for row in rows:
        result[str(row["group"])].sla[row["kind"]] = SLAFigures(row["met_n"], row["breached_n"])


def _handoff_rate(since: datetime, until: datetime, channel: str | None,
                  group_by: str | None, result: dict[str, HandoffMetrics]) -> None:
    conversations = Conversation.objects.filter(started_at__gte=since, started_at__lt=until)
    if channel:
        conversations = conversations.filter(channel=channel)
    has_handoff = Exists(Handoff.objects.filter(conversation=OuterRef("pk")))
    ai_took_part = (
        Exists(Message.objects.filter(conversation=OuterRef("pk"), author_kind=AuthorKind.AI))
        | Exists(AIStep.objects.filter(conversation=OuterRef("pk")))
    )
    if group_by is None:
        key: Any = Value(TOTAL)
    elif group_by == "day":
        key = TruncDate("started_at", tzinfo=timezone.get_current_timezone())
    else:
        key = F("channel")
    rows = (
        conversations.annotate(group=key, handed_off=has_handoff, ai=ai_took_part)
        .values("group")
        .annotate(
            eligible=Count("id", filter=Q(handed_off=True) | Q(ai=True)),
            handed_off_count=Count("id", filter=Q(handed_off=True)),
        )
    )
    for row in rows:
        key_str = str(row["group"])
        metrics = result.setdefault(key_str, HandoffMetrics(key=key_str))
        metrics.conversations_eligible = row["eligible"]
        metrics.conversations_handed_off = row["handed_off_count"]
    for metrics in result.values():
        if metrics.conversations_eligible is None:
            metrics.conversations_eligible, metrics.conversations_handed_off = 0, 0
