"""Reads for the dashboards: handoff figures (from handoffs.selectors.handoff_metrics, never
recomputed here), AI cost, resolution, CSAT by handoff outcome and release comparisons per
AI model and prompt version, for one period and optionally one channel.

Definitions (the page says them too):
- the **period** is the last N days up to and including today, in the site's time zone;
- cost, resolution, CSAT and releases count the conversations **started** in the period;
  handoff figures count the handoffs **requested** in it (handoff_metrics' rules);
- a conversation is **resolved** when an outcome says resolved, or one of its handoffs
  ended resolved;
- **cost** is the sum of AIStep.cost; per resolved conversation = the period's whole AI
  cost / resolved conversations (what a resolution costs, failures included);
- **CSAT by handoff outcome** groups rated conversations (their latest CSAT) by how the
  conversation's last handoff ended: no handoff, resolved, abandoned, returned to the AI
  (or still open);
- a **release** is an AI model (the model that answered, else the one requested) or a
  prompt version; a conversation counts under every release that took a step in it, and
  a release's cost is the cost of its own steps.

Queries: a fixed number (the handoff metrics' three calls, then four here) whatever the
period, channel count or data volume.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    Avg,
    Case,
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from conversations.models import AIStep, Conversation, Outcome
from handoffs.machine import State
from handoffs.models import Handoff, Wait
from handoffs.selectors import HandoffMetrics, handoff_metrics

PERIODS = (7, 30, 90)
CSAT_BUCKETS = ("none", "resolved", "abandoned", "returned", "open")
CSAT_BUCKET_LABELS = {
    "none": "No handoff", "resolved": "Handoff resolved", "abandoned": "Handoff abandoned",
    "returned": "Returned to AI", "open": "Handoff still open",
}


@dataclass(frozen=True)
class Period:
    days: int
    first: date
    last: date  # inclusive
    channel: str = ""

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min,
                                tzinfo=timezone.get_current_timezone())

    def day_list(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


def dashboard_period(*, days: int, channel: str = "", today: date | None = None) -> Period:
    today = today or timezone.localdate()
    return Period(days=days, first=today - timedelta(days=days - 1), last=today, channel=channel)


def inbox_link(period: Period, *, day: date | None = None, **filters: str) -> str:
    """The inbox showing the conversations behind a figure: the figure's filters, the
    dashboard's channel, and its dates (the inbox's since/until are by last activity, so
    they include every conversation started or handed off in the period)."""
    params = {"channel": period.channel, **filters,
              "since": (day or period.first).isoformat(), "until": period.last.isoformat()}
    return f"{reverse('audit:inbox')}?{urlencode({k: v for k, v in params.items() if v})}"


@dataclass
class CostFigures:
    key: str
    conversations: int = 0
    resolved: int = 0
    cost: Decimal = Decimal(0)
    rated: int = 0
    csat: float | None = None

    @property
    def cost_per_conversation(self) -> Decimal | None:
        return self.cost / self.conversations if self.conversations else None

    @property
    def cost_per_resolved(self) -> Decimal | None:
        return self.cost / self.resolved if self.resolved else None

    @property
    def resolved_rate(self) -> float | None:
        return self.resolved / self.conversations if self.conversations else None


@dataclass
class CsatBucket:
    key: str
    conversations: int = 0
    rated: int = 0
    csat: float | None = None

    @property
    def label(self) -> str:
        return CSAT_BUCKET_LABELS[self.key]


@dataclass
class Release:
    key: str
    conversations: int = 0
    handed_off: int = 0
    dropped: int = 0
    cost: Decimal = Decimal(0)
    rated: int = 0
    csat: float | None = None

    @property
    def handoff_rate(self) -> float | None:
        return self.handed_off / self.conversations if self.conversations else None

    @property
    def dropped_rate(self) -> float | None:
        return self.dropped / self.handed_off if self.handed_off else None

    @property
    def cost_per_conversation(self) -> Decimal | None:
        return self.cost / self.conversations if self.conversations else None


@dataclass
class Dashboard:
    period: Period
    total: HandoffMetrics
    by_channel: list[HandoffMetrics]
    by_day: list[HandoffMetrics]  # one per day of the period, empty days included
    costs: CostFigures
    costs_by_channel: list[CostFigures]
    csat: list[CsatBucket]
    models: list[Release]
    prompts: list[Release]
    sla_kinds: list[str] = field(default_factory=list)


def conversation_facts(*, period: Period) -> QuerySet[Conversation]:
    """The period's conversations (by start), each with its AI cost, latest CSAT, whether it
    was resolved and handed off, and its last handoff's state."""
    qs = Conversation.objects.filter(started_at__gte=period.since, started_at__lt=period.until)
    if period.channel:
        qs = qs.filter(channel=period.channel)
    own = {"conversation": OuterRef("pk")}
    cost = (AIStep.objects.filter(**own).order_by().values("conversation")
            .annotate(total=Sum("cost")).values("total"))
    csat = (Outcome.objects.filter(**own, csat__isnull=False)
            .order_by("-occurred_at", "-id").values("csat")[:1])
    last_state = Handoff.objects.filter(**own).order_by("-number").values("state")[:1]
    return qs.annotate(
        ai_cost=Subquery(cost),
        csat_value=Subquery(csat),
        last_state=Subquery(last_state),
        handed_off=Exists(Handoff.objects.filter(**own)),
        dropped=Exists(Handoff.objects.filter(**own, dropped_at__isnull=False)),
        is_resolved=Exists(Outcome.objects.filter(**own, resolved=True))
        | Exists(Handoff.objects.filter(**own, state=State.RESOLVED)),
    )


def _costs(facts: QuerySet[Conversation]) -> list[CostFigures]:
    rows = (
        facts.values("channel")
        .annotate(
            n=Count("id"),
            resolved_n=Count("id", filter=Q(is_resolved=True)),
            cost_sum=Sum("ai_cost"),
            rated_n=Count("csat_value"),
            csat_avg=Avg("csat_value"),
        )
        .order_by("channel")
    )
    return [
        CostFigures(key=r["channel"], conversations=r["n"], resolved=r["resolved_n"],
                    cost=Decimal(r["cost_sum"] or 0), rated=r["rated_n"], csat=r["csat_avg"])
        for r in rows
    ]


def _total(rows: list[CostFigures]) -> CostFigures:
    total = CostFigures(key="all")
    csat_sum = 0.0
    for r in rows:
        total.conversations += r.conversations
        total.resolved += r.resolved
        total.cost += r.cost
        total.rated += r.rated
        csat_sum += (r.csat or 0) * r.rated
    total.csat = csat_sum / total.rated if total.rated else None
    return total


def _csat(facts: QuerySet[Conversation]) -> list[CsatBucket]:
    ended = [State.RESOLVED, State.ABANDONED, State.RETURNED]
    bucket = Case(
        When(last_state__isnull=True, then=Value("none")),
        *[When(last_state=s.value, then=Value(s.value)) for s in ended],
        default=Value("open"),
    )
    rows = facts.annotate(bucket=bucket).values("bucket").annotate(
        n=Count("id"), rated_n=Count("csat_value"), csat_avg=Avg("csat_value"))
    found = {r["bucket"]: CsatBucket(r["bucket"], r["n"], r["rated_n"], r["csat_avg"])
             for r in rows}
    # The four outcomes always show (a zero is a figure too); "still open" only if any.
    return [found.get(key, CsatBucket(key)) for key in CSAT_BUCKETS
            if key != "open" or key in found]


def _releases(facts: QuerySet[Conversation], key_sql: str) -> list[Release]:
    """One row per release key (an SQL expression over the AI step `s`)."""
    facts_sql, params = facts.values(
        "id", "handed_off", "dropped", "csat_value"
    ).query.sql_with_params()
    steps = connection.ops.quote_name(AIStep._meta.db_table)
    sql = f"""
        SELECT m.release, COUNT(*), SUM(CASE WHEN f.handed_off THEN 1 ELSE 0 END),
               SUM(CASE WHEN f.dropped THEN 1 ELSE 0 END), SUM(m.cost),
               COUNT(f.csat_value), AVG(f.csat_value)
        FROM (SELECT s.conversation_id, {key_sql} AS release, SUM(s.cost) AS cost
              FROM {steps} s GROUP BY s.conversation_id, {key_sql}) m
        JOIN ({facts_sql}) f ON f.id = m.conversation_id
        WHERE m.release <> ''
        GROUP BY m.release
        ORDER BY COUNT(*) DESC, m.release
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            Release(key=r[0], conversations=r[1], handed_off=r[2] or 0, dropped=r[3] or 0,
                    cost=Decimal(r[4] or 0), rated=r[5],
                    csat=None if r[6] is None else float(r[6]))
            for r in cursor.fetchall()
        ]


def _empty(key: str) -> HandoffMetrics:
    return HandoffMetrics(key=key, conversations_eligible=0, conversations_handed_off=0)


MODEL_SQL = "COALESCE(NULLIF(s.response_model, ''), s.request_model)"
PROMPT_SQL = "s.prompt_version"


def dashboard(*, period: Period, now: datetime | None = None) -> Dashboard:
    """Every figure of the dashboards page for one period (and channel)."""
    kw: dict[str, Any] = {"since": period.since, "until": period.until,
                          "channel": period.channel or None, "now": now}
    by_channel = handoff_metrics(group_by="channel", **kw)
    overall = by_channel if period.channel else handoff_metrics(**kw)
    total = next(iter(overall), None) or _empty("all")
    days = {m.key: m for m in handoff_metrics(group_by="day", **kw)}
    by_day = [days.get(d.isoformat()) or _empty(d.isoformat()) for d in period.day_list()]
    facts = conversation_facts(period=period)
    costs_by_channel = _costs(facts)
    kinds = {kind for m in (total, *by_channel) for kind in m.sla}
    return Dashboard(
        period=period, total=total, by_channel=by_channel, by_day=by_day,
        costs=_total(costs_by_channel), costs_by_channel=costs_by_channel,
        csat=_csat(facts), models=_releases(facts, MODEL_SQL),
        prompts=_releases(facts, PROMPT_SQL),
        sla_kinds=[k.value for k in Wait.Kind if k.value in kinds],
    )

