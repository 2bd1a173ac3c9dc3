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

from django.db import connection, transaction
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from conversations.models import AIStep, Conversation, Outcome
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


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _facts_sql(period: Period) -> tuple[str, list[Any]]:
    """CTEs ending in `facts`: one row per conversation started in the period, with its AI
    cost, latest CSAT, whether it was resolved, handed off or dropped, and its last
    handoff's state. Set-based (each detail table aggregated once and joined), not a
    subquery per conversation: at a million conversations that is the difference between
    hash joins and millions of index probes."""
    ops = connection.ops
    params: list[Any] = [ops.adapt_datetimefield_value(period.since),
                         ops.adapt_datetimefield_value(period.until)]
    channel = ""
    if period.channel:
        channel, params = " AND channel = %s", [*params, period.channel]
    steps, outcomes, handoffs = _table(AIStep), _table(Outcome), _table(Handoff)
    return f"""
        WITH conv AS (
            SELECT id, channel FROM {_table(Conversation)}
            WHERE started_at >= %s AND started_at < %s{channel}
        ), cost AS (
            SELECT s.conversation_id, SUM(s.cost) AS cost
            FROM {steps} s JOIN conv ON conv.id = s.conversation_id GROUP BY s.conversation_id
        ), rated AS (
            SELECT conversation_id, csat FROM (
                SELECT o.conversation_id, o.csat, ROW_NUMBER() OVER (
                    PARTITION BY o.conversation_id ORDER BY o.occurred_at DESC, o.id DESC) AS n
                FROM {outcomes} o JOIN conv ON conv.id = o.conversation_id
                WHERE o.csat IS NOT NULL) latest
            WHERE n = 1
        ), hand AS (
            SELECT h.conversation_id, MAX(h.number) AS last_number,
                   MAX(CASE WHEN h.dropped_at IS NOT NULL THEN 1 ELSE 0 END) AS dropped,
                   MAX(CASE WHEN h.state = 'resolved' THEN 1 ELSE 0 END) AS resolved
            FROM {handoffs} h JOIN conv ON conv.id = h.conversation_id
            GROUP BY h.conversation_id
        ), said_resolved AS (
            SELECT DISTINCT o.conversation_id
            FROM {outcomes} o JOIN conv ON conv.id = o.conversation_id WHERE o.resolved
        ), facts AS (
            SELECT conv.id, conv.channel, cost.cost, rated.csat,
                   CASE WHEN hand.conversation_id IS NULL THEN 0 ELSE 1 END AS handed_off,
                   COALESCE(hand.dropped, 0) AS dropped,
                   CASE WHEN hand.resolved = 1 OR said_resolved.conversation_id IS NOT NULL
                        THEN 1 ELSE 0 END AS resolved,
                   CASE WHEN hand.conversation_id IS NULL THEN 'none'
                        WHEN last.state IN ('resolved', 'abandoned', 'returned') THEN last.state
                        ELSE 'open' END AS bucket
            FROM conv
            LEFT JOIN cost ON cost.conversation_id = conv.id
            LEFT JOIN rated ON rated.conversation_id = conv.id
            LEFT JOIN hand ON hand.conversation_id = conv.id
            LEFT JOIN said_resolved ON said_resolved.conversation_id = conv.id
            LEFT JOIN {handoffs} last
                ON last.conversation_id = conv.id AND last.number = hand.last_number
        )""", params


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _number(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _costs_and_csat(period: Period) -> tuple[list[CostFigures], list[CsatBucket]]:
    """Per channel and per CSAT bucket, from one grouping by (channel, bucket)."""
    facts, params = _facts_sql(period)
    rows = _rows(f"""{facts}
        SELECT channel, bucket, COUNT(*), SUM(resolved), SUM(cost), COUNT(csat), SUM(csat)
        FROM facts GROUP BY channel, bucket ORDER BY channel, bucket""", params)
    channels: dict[str, CostFigures] = {}
    buckets: dict[str, CsatBucket] = {}
    sums: dict[tuple[str, str], float] = {}
    for channel, bucket, n, resolved, cost, rated, csat_sum in rows:
        c = channels.setdefault(channel, CostFigures(key=channel))
        b = buckets.setdefault(bucket, CsatBucket(key=bucket))
        for figures, key in ((c, ("c", channel)), (b, ("b", bucket))):
            figures.conversations += n
            figures.rated += rated
            sums[key] = sums.get(key, 0.0) + float(csat_sum or 0)
        c.resolved += int(resolved or 0)
        c.cost += _number(cost)
    for kind, figures in [*(("c", f) for f in channels.values()),
                          *(("b", f) for f in buckets.values())]:
        figures.csat = sums[kind, figures.key] / figures.rated if figures.rated else None
    # The four outcomes always show (a zero is a figure too); "still open" only if any.
    ordered = [buckets.get(key, CsatBucket(key)) for key in CSAT_BUCKETS
               if key != "open" or key in buckets]
    return list(channels.values()), ordered


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


def _releases(period: Period, key_sql: str) -> list[Release]:
    """One row per release key (an SQL expression over the AI step `s`)."""
    facts, params = _facts_sql(period)
    rows = _rows(f"""{facts}, m AS (
            SELECT s.conversation_id, {key_sql} AS release, SUM(s.cost) AS cost
            FROM {_table(AIStep)} s JOIN conv ON conv.id = s.conversation_id
            GROUP BY s.conversation_id, {key_sql}
        )
        SELECT m.release, COUNT(*), SUM(f.handed_off), SUM(f.dropped), SUM(m.cost),
               COUNT(f.csat), AVG(f.csat)
        FROM m JOIN facts f ON f.id = m.conversation_id
        WHERE m.release <> ''
        GROUP BY m.release
        ORDER BY COUNT(*) DESC, m.release""", params)
    return [
        Release(key=r[0], conversations=r[1], handed_off=int(r[2] or 0), dropped=int(r[3] or 0),
                cost=_number(r[4]), rated=r[5], csat=None if r[6] is None else float(r[6]))
        for r in rows
    ]


def _empty(key: str) -> HandoffMetrics:
    return HandoffMetrics(key=key, conversations_eligible=0, conversations_handed_off=0)


MODEL_SQL = "COALESCE(NULLIF(s.response_model, ''), s.request_model)"
PROMPT_SQL = "s.prompt_version"


def dashboard(*, period: Period, now: datetime | None = None) -> Dashboard:
    """Every figure of the dashboards page for one period (and channel)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # These are long analytical queries whose estimates pass PostgreSQL's JIT
            # thresholds: compiling them cost more than a second and saved nothing
            # (EXPLAIN ANALYZE at 20,000 conversations: 1.1 s of JIT in a 1.6 s query).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        return _dashboard(period=period, now=now)


def _dashboard(*, period: Period, now: datetime | None) -> Dashboard:
    kw: dict[str, Any] = {"since": period.since, "until": period.until,
                          "channel": period.channel or None, "now": now}
    by_channel = handoff_metrics(group_by="channel", **kw)
    overall = by_channel if period.channel else handoff_metrics(**kw)
    total = next(iter(overall), None) or _empty("all")
    days = {m.key: m for m in handoff_metrics(group_by="day", **kw)}
    by_day = [days.get(d.isoformat()) or _empty(d.isoformat()) for d in period.day_list()]
    costs_by_channel, csat_buckets = _costs_and_csat(period)
    kinds = {kind for m in (total, *by_channel) for kind in m.sla}
    return Dashboard(
        period=period, total=total, by_channel=by_channel, by_day=by_day,
        costs=_total(costs_by_channel), costs_by_channel=costs_by_channel,
        csat=csat_buckets, models=_releases(period, MODEL_SQL),
        prompts=_releases(period, PROMPT_SQL),
        sla_kinds=[k.value for k in Wait.Kind if k.value in kinds],
    )

