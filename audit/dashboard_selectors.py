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
  a release's cost is the cost of its own steps;
- **tone** is the scoring app's brand-tone score (0-1, shown 0-100) from its daily
  aggregates (scoring.selectors.channel_summary and daily_series), for one brand voice.

The page reads the daily rollups (`dashboard`: three tables, a few hundred rows, plus two
freshness queries and tone's; audit.rollups builds them from `breakdown_rows` and the
handoffs per day); `dashboard_direct` computes the same figures from the facts
(handoff_metrics' three or two calls, then one statement) and is the reference the rollups
are tested against. Both: a fixed number of queries whatever the period, channel count or
data volume.
"""

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Model
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.http import urlencode

from conversations.models import AIStep, Conversation, DashboardDirtyDay, Message, Outcome
from handoffs.models import Handoff, Wait
from handoffs.selectors import HandoffMetrics, SLAFigures, handoff_metrics
from scoring.models import BrandVoice
from scoring.selectors import (
    channel_distributions,
    channel_summary,
    daily_series,
    language_summary,
)

from .models import ConversationDaily, DashboardDay, HandoffDaily, ReleaseDaily

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
    path = _inbox_path(get_script_prefix(), get_urlconf())
    return f"{path}?{urlencode({k: v for k, v in params.items() if v})}"


@functools.lru_cache(maxsize=16)
def _inbox_path(prefix: str, urlconf: str | None) -> str:
    """reverse() once per prefix and URLconf: a page of figures makes thousands of links."""
    return reverse("audit:inbox")


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
    tone: "Tone | None" = None
    freshness: "Freshness | None" = None  # None: computed from the facts, not the rollups


@dataclass
class Tone:
    """Brand tone (0-1) from the scoring app's daily aggregates, for one brand voice."""

    brand: str  # BrandVoice.name
    label: str
    brands: list[tuple[str, str]]  # every brand voice: (name, label)
    per_channel: dict[str, dict[str, Any]]  # channel -> {count, mean, stddev}
    by_author: dict[str, dict[str, dict[str, Any]]]  # channel -> author kind -> same
    consistency_index: float | None  # across channels (scoring.stats.consistency_index)
    daily: dict[str, dict[str, float]]  # channel -> ISO day -> mean
    # Per detected language: messages, scored, not scored (language), mean brand tone,
    # and mean warmth and formality ("also").
    languages: list[dict[str, Any]] = field(default_factory=list)
    # Channels' brand-tone distributions compared pairwise (Wasserstein, KS, sizes).
    distributions: dict[str, Any] = field(default_factory=dict)


def dashboard_tone(*, period: Period, brand: str = "") -> Tone | None:
    """Tone by channel and author kind, the consistency index and a daily mean per channel
    over the period, for `brand` (else the default brand voice). Two queries and the brand
    list; None when there is no brand voice."""
    brands = list(BrandVoice.objects.order_by("-is_default", "name"))
    voice = next((b for b in brands if b.name == brand), brands[0] if brands else None)
    if voice is None:
        return None
    summary = channel_summary(brand=voice, start=period.first, end=period.last)
    weighted: dict[tuple[str, str], list[float]] = {}
    for row in daily_series(brand=voice, start=period.first, end=period.last):
        if period.channel and row.channel != period.channel:
            continue
        acc = weighted.setdefault((row.channel, row.day.isoformat()), [0.0, 0.0])
        acc[0] += row.count * row.mean
        acc[1] += row.count
    daily: dict[str, dict[str, float]] = {}
    for (channel, day), (total, count) in sorted(weighted.items()):
        if count:
            daily.setdefault(channel, {})[day] = total / count

    def mine(by_channel: dict[str, Any]) -> dict[str, Any]:
        return {c: v for c, v in by_channel.items() if not period.channel or c == period.channel}

    return Tone(
        brand=voice.name, label=voice.display_name or voice.name,
        brands=[(b.name, b.display_name or b.name) for b in brands],
        per_channel=mine(summary["per_channel"]), by_author=mine(summary["channels"]),
        consistency_index=summary["consistency_index"], daily=daily,
        languages=language_summary(brand=voice, start=period.since, end=period.until,
                                   also=("warmth", "formality")),
        distributions=channel_distributions(brand=voice, start=period.since,
                                            end=period.until),
    )


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
                   CASE WHEN hand.conversation_id IS NOT NULL
                          OR cost.conversation_id IS NOT NULL
                          OR EXISTS (SELECT 1 FROM {_table(Message)} m
                                     WHERE m.conversation_id = conv.id
                                     AND m.author_kind = 'ai')
                        THEN 1 ELSE 0 END AS eligible,
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


def breakdown_rows(period: Period) -> list[tuple[Any, ...]]:
    """The conversation figures of the period, per channel, in one statement over one pass
    of the facts (PostgreSQL materializes a CTE used more than once). Rows:
    ('channel', channel, bucket, conversations, resolved, eligible, cost, rated, csat sum) and
    ('model' | 'prompt', release, channel, conversations, handed off, dropped, cost, rated,
    csat sum). Every figure is a count or a sum over conversations started in the period,
    so the rows of single days add up to the rows of their period (the daily rollups,
    audit.rollups, are these rows per day)."""
    facts, params = _facts_sql(period)
    figures = "COUNT(*), SUM(f.handed_off), SUM(f.dropped), SUM(r.cost), COUNT(f.csat), " \
        "SUM(f.csat)"
    return _rows(f"""{facts}, m AS (
            SELECT s.conversation_id, {MODEL_SQL} AS model, s.prompt_version AS prompt,
                   SUM(s.cost) AS cost
            FROM {_table(AIStep)} s JOIN conv ON conv.id = s.conversation_id
            GROUP BY s.conversation_id, {MODEL_SQL}, s.prompt_version
        ), by_model AS (
            SELECT conversation_id, model AS release, SUM(cost) AS cost FROM m
            WHERE model <> '' GROUP BY conversation_id, model
        ), by_prompt AS (
            SELECT conversation_id, prompt AS release, SUM(cost) AS cost FROM m
            WHERE prompt <> '' GROUP BY conversation_id, prompt
        )
        SELECT 'channel', channel, bucket, COUNT(*), SUM(resolved), SUM(eligible), SUM(cost),
               COUNT(csat), SUM(csat)
        FROM facts GROUP BY channel, bucket
        UNION ALL
        SELECT 'model', r.release, f.channel, {figures}
        FROM by_model r JOIN facts f ON f.id = r.conversation_id GROUP BY r.release, f.channel
        UNION ALL
        SELECT 'prompt', r.release, f.channel, {figures}
        FROM by_prompt r JOIN facts f ON f.id = r.conversation_id GROUP BY r.release, f.channel""",
                 params)


def fold_breakdowns(rows: Iterable[tuple[Any, ...]]) -> tuple[
        list[CostFigures], list[CsatBucket], list[Release], list[Release]]:
    """Per channel, per CSAT bucket, per model and per prompt version, from breakdown_rows'
    rows (of a period, or of its days added up)."""
    channels: dict[str, CostFigures] = {}
    buckets: dict[str, CsatBucket] = {}
    releases: dict[str, dict[str, Release]] = {"model": {}, "prompt": {}}
    sums: dict[tuple[str, str], float] = {}
    for kind, key, bucket, n, count, other, cost, rated, csat_sum in rows:
        if kind != "channel":
            r = releases[kind].setdefault(key, Release(key=key))
            r.conversations += n
            r.handed_off += int(count or 0)
            r.dropped += int(other or 0)
            r.cost += _number(cost)
            r.rated += rated
            sums[kind, key] = sums.get((kind, key), 0.0) + float(csat_sum or 0)
            continue
        c = channels.setdefault(key, CostFigures(key=key))
        b = buckets.setdefault(bucket, CsatBucket(key=bucket))
        for group, sum_key in ((c, ("c", key)), (b, ("b", bucket))):
            group.conversations += n
            group.rated += rated
            sums[sum_key] = sums.get(sum_key, 0.0) + float(csat_sum or 0)
        c.resolved += int(count or 0)
        c.cost += _number(cost)
    for prefix, group in [*(("c", f) for f in channels.values()),
                          *(("b", f) for f in buckets.values()),
                          *((k, r) for k, found in releases.items() for r in found.values())]:
        group.csat = sums[prefix, group.key] / group.rated if group.rated else None
    # The four outcomes always show (a zero is a figure too); "still open" only if any.
    ordered = [buckets.get(key, CsatBucket(key)) for key in CSAT_BUCKETS
               if key != "open" or key in buckets]
    models, prompts = (sorted(releases[k].values(), key=lambda r: (-r.conversations, r.key))
                       for k in ("model", "prompt"))
    return sorted(channels.values(), key=lambda c: c.key), ordered, models, prompts


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


def _empty(key: str) -> HandoffMetrics:
    return HandoffMetrics(key=key, conversations_eligible=0, conversations_handed_off=0)


MODEL_SQL = "COALESCE(NULLIF(s.response_model, ''), s.request_model)"


def dashboard(*, period: Period, now: datetime | None = None, brand: str = "") -> Dashboard:
    """Every figure of the dashboards page for one period (and channel), read from the daily
    rollups (audit.rollups: figures as of each day's last rebuild, see `freshness`); tone
    for `brand` (a BrandVoice name; default: the default brand voice). A fixed number of
    queries, a few hundred rows at most, whatever the data volume."""
    board = _dashboard_rollups(period=period, now=now or timezone.now())
    board.tone = dashboard_tone(period=period, brand=brand)
    return board


def dashboard_direct(*, period: Period, now: datetime | None = None,
                     brand: str = "") -> Dashboard:
    """The same figures computed from the facts themselves (handoff_metrics and
    breakdown_rows over the whole period): the reference the rollups are tested against.
    Seconds at a million conversations."""
    with transaction.atomic():
        _jit_off()
        board = _dashboard(period=period, now=now)
        board.tone = dashboard_tone(period=period, brand=brand)
        return board


def _jit_off() -> None:
    if connection.vendor == "postgresql":
        # These are long analytical queries whose estimates pass PostgreSQL's JIT
        # thresholds: compiling them cost more than a second and saved nothing
        # (EXPLAIN ANALYZE at 20,000 conversations: 1.1 s of JIT in a 1.6 s query).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _dashboard(*, period: Period, now: datetime | None) -> Dashboard:
    kw: dict[str, Any] = {"since": period.since, "until": period.until,
                          "channel": period.channel or None, "now": now}
    by_channel = handoff_metrics(group_by="channel", **kw)
    overall = by_channel if period.channel else handoff_metrics(**kw)
    total = next(iter(overall), None) or _empty("all")
    days = {m.key: m for m in handoff_metrics(group_by="day", **kw)}
    return _board(period, total, by_channel, days, breakdown_rows(period))


def _board(period: Period, total: HandoffMetrics, by_channel: list[HandoffMetrics],
           days: dict[str, HandoffMetrics], rows: Iterable[tuple[Any, ...]]) -> Dashboard:
    by_day = [days.get(d.isoformat()) or _empty(d.isoformat()) for d in period.day_list()]
    costs_by_channel, csat_buckets, models, prompts = fold_breakdowns(rows)
    kinds = {kind for m in (total, *by_channel) for kind in m.sla}
    return Dashboard(
        period=period, total=total, by_channel=by_channel, by_day=by_day,
        costs=_total(costs_by_channel), costs_by_channel=costs_by_channel,
        csat=csat_buckets, models=models, prompts=prompts,
        sla_kinds=[k.value for k in Wait.Kind if k.value in kinds],
    )


# --- from the daily rollups -----------------------------------------------------------------


@dataclass
class Freshness:
    """How current the rollup-backed figures are."""

    built_at: datetime | None  # the latest rebuild of a day of the period
    pending: int  # days of the period changed since their last rebuild
    pending_since: datetime | None  # the oldest such change


_SHARED = ("conversations", "dropped", "returned")
FLOATS = "<f8"  # HandoffDaily's packed arrays
SLA_KINDS = [k.value for k in Wait.Kind]  # HandoffDaily.sla_open's kind indexes


class _Group:
    """HandoffDaily cells (and ConversationDaily rows) added up into one HandoffMetrics."""

    def __init__(self, key: str) -> None:
        self.m = HandoffMetrics(key=key, conversations_eligible=0, conversations_handed_off=0)
        self.distinct = dict.fromkeys(_SHARED, 0)
        self.shared: dict[str, set[int]] = {name: set() for name in _SHARED}
        self.times: dict[str, list[Any]] = {"time_to_human": [], "time_to_human_business": []}
        self.sla: dict[str, list[int]] = {}  # kind -> [waits, met, breached]
        self.open: list[Any] = []  # arrays of (kind index, deadline) pairs

    def add_cell(self, cell: dict[str, Any]) -> None:
        m = self.m
        m.handoffs += cell["handoffs"]
        m.reached_human += cell["reached"]
        m.stalled += cell["stalled"]
        for name in _SHARED:
            shared = cell["shared"].get(name, [])
            # Conversations counted in one cell only, plus (below) the union of the others.
            self.distinct[name] += cell[name] - len(shared)
            self.shared[name].update(shared)
        for name, arrays in self.times.items():
            arrays.append(numpy.frombuffer(cell[name], dtype=FLOATS))
        for kind, figures in cell["sla"].items():
            acc = self.sla.setdefault(kind, [0, 0, 0])
            acc[0] += figures["waits"]
            acc[1] += figures["met"]
            acc[2] += figures["breached"]
        self.open.append(numpy.frombuffer(cell["sla_open"], dtype=FLOATS))

    def add_conversations(self, bucket: str, conversations: int, eligible: int) -> None:
        self.m.conversations_eligible = (self.m.conversations_eligible or 0) + eligible
        if bucket != "none":
            self.m.conversations_handed_off = (self.m.conversations_handed_off or 0) \
                + conversations

    def metrics(self, now: datetime) -> HandoffMetrics:
        m = self.m
        m.conversations_with_handoff, m.conversations_dropped, m.conversations_returned = (
            self.distinct[name] + len(self.shared[name]) for name in _SHARED)
        for name, arrays in self.times.items():
            values = numpy.concatenate(arrays) if arrays else numpy.empty(0)
            if len(values):
                # Linear interpolation between closest ranks, as PERCENTILE_CONT.
                p50, p90 = numpy.percentile(values, [50, 90])
                setattr(m, f"{name}_p50", float(p50))
                setattr(m, f"{name}_p90", float(p90))
        pairs = numpy.concatenate(self.open).reshape(-1, 2) if self.open \
            else numpy.empty((0, 2))
        due = pairs[pairs[:, 1] <= now.timestamp(), 0]  # kinds of the waits now breached
        late = {kind: int(numpy.count_nonzero(due == n)) for n, kind in enumerate(SLA_KINDS)}
        m.sla = {kind: SLAFigures(met, breached + late[kind])
                 for kind, (waits, met, breached) in sorted(self.sla.items()) if waits}
        return m


def _dashboard_rollups(*, period: Period, now: datetime) -> Dashboard:
    mine: dict[str, Any] = {"day__gte": period.first, "day__lte": period.last}
    if period.channel:
        mine["channel"] = period.channel
    groups: dict[tuple[str, str], _Group] = {}

    def groups_of(day: date, channel: str) -> list[_Group]:
        return [groups.setdefault(key, _Group(key[1])) for key in
                (("all", "all"), ("channel", channel), ("day", day.isoformat()))]

    rows: list[tuple[Any, ...]] = []
    for day, channel, bucket, n, eligible, resolved, cost, rated, csat_sum in \
            ConversationDaily.objects.filter(**mine).values_list(
                "day", "channel", "bucket", "conversations", "eligible", "resolved", "cost",
                "rated", "csat_sum"):
        rows.append(("channel", channel, bucket, n, resolved, eligible, cost, rated, csat_sum))
        for group in groups_of(day, channel):
            group.add_conversations(bucket, n, eligible)
    rows.extend(ReleaseDaily.objects.filter(**mine).values_list(
        "kind", "release", "channel", "conversations", "handed_off", "dropped", "cost", "rated",
        "csat_sum"))
    for cell in HandoffDaily.objects.filter(**mine).values(
            "day", "channel", "handoffs", "reached", "stalled", *_SHARED, "shared",
            "time_to_human", "time_to_human_business", "sla", "sla_open"):
        for group in groups_of(cell["day"], cell["channel"]):
            group.add_cell(cell)
    metrics = {key: group.metrics(now) for key, group in groups.items()}
    by_channel = sorted((m for (kind, _), m in metrics.items() if kind == "channel"),
                        key=lambda m: m.key)
    total = (by_channel[0] if by_channel else None) if period.channel \
        else metrics.get(("all", "all"))
    days = {key: m for (kind, key), m in metrics.items() if kind == "day"}
    board = _board(period, total or _empty("all"), by_channel, days, rows)
    board.freshness = dashboard_freshness(period=period)
    return board


def dashboard_freshness(*, period: Period) -> Freshness:
    """When the period's rollups were last rebuilt and how many of its days wait for the
    next rebuild (audit.rollups; beat runs it every minute). Two queries."""
    days = {"day__gte": period.first, "day__lte": period.last}
    built = DashboardDay.objects.filter(**days).aggregate(at=Max("built_at"))["at"]
    pending = DashboardDirtyDay.objects.filter(**days).aggregate(n=Count("day"),
                                                                 since=Min("marked_at"))
    return Freshness(built_at=built, pending=pending["n"], pending_since=pending["since"])
