"""Reads for the outcome reports (issue 17): customer outcomes per channel, per handoff
outcome, per day; the same figures per agent, queue, team, AI model and prompt version;
worst cases; and release comparisons with confidence intervals and significance tests.

Everything is read from the daily rollup audit.OutcomeDaily (built by
audit.outcome_rollups from the per-conversation rules in audit.outcome_rules): one query per
report whatever the period, so a page's query count does not depend on its length. Every
figure carries its n (the conversations, handoffs, answers or reviews behind it).

Reusable without the pages (alerts can call them): `outcome_report`, `outcome_groups`,
`outcome_compare`, and the figure objects' properties (`resolved_rate`, `csat`, `nps`,
`first_response.p90`, ...). Definitions: docs/reports.md.
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

import numpy
from scipy import stats

from .dashboard_selectors import CSAT_BUCKETS, Period
from .outcome_models import OutcomeDaily
from .outcome_rollups import FLOATS, WORST, WORST_N

COUNTS = ("resolved", "contained", "escalated", "repeat", "converted", "rated", "nps_n",
          "promoters", "detractors", "costed", "sentiment_n", "handoffs", "reached",
          "stalled", "dropped", "handoff_resolved", "sla_waits", "sla_met", "qa_reviews",
          "qa_failed")
SUMS = ("csat_sum", "csat_sq", "cost_sq", "warmth_start", "warmth_end", "qa_sum")
ARRAYS = ("first_response", "first_human", "resolution_time", "time_to_human")
GROUP_KINDS = ("agent", "queue", "team", "model", "prompt")
Z95 = 1.959963984540054


SHOWN = (50, 90, 99)  # the percentiles the pages, the API and the CSV show


@dataclass(frozen=True)
class Distribution:
    """Seconds: how many, and the 50th, 90th and 99th percentiles (linear interpolation
    between closest ranks, as PostgreSQL's PERCENTILE_CONT). The three are found together,
    once (one partial sort of the values), however often a page asks for them."""

    values: numpy.ndarray

    @property
    def n(self) -> int:
        return int(len(self.values))

    @cached_property
    def _shown(self) -> dict[float, float]:
        if not len(self.values):
            return {}
        return dict(zip(SHOWN, (float(v) for v in numpy.percentile(self.values, SHOWN)),
                        strict=True))

    def percentile(self, q: float) -> float | None:
        if not len(self.values):
            return None
        if q in SHOWN:
            return self._shown[q]
        return float(numpy.percentile(self.values, q))

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p90(self) -> float | None:
        return self.percentile(90)

    @property
    def p99(self) -> float | None:
        return self.percentile(99)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class OutcomeFigures:
    """One group's figures over a period (sums of OutcomeDaily rows)."""

    key: str
    label: str = ""
    conversations: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SUMS, 0.0))
    cost: Decimal = Decimal(0)
    revenue: dict[str, Decimal] = field(default_factory=dict)
    parts: dict[str, list[numpy.ndarray]] = field(
        default_factory=lambda: {name: [] for name in ARRAYS})
    worst: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    # Each distribution built once (the parts joined) until a row is added.
    _distributions: dict[str, Distribution] = field(default_factory=dict, repr=False)

    def add(self, row: dict[str, Any]) -> None:
        self._distributions.clear()
        self.label = row.get("label") or self.label
        self.conversations += row["conversations"]
        for name in COUNTS:
            self.counts[name] += row[name]
        for name in SUMS:
            self.sums[name] += row[name]
        self.cost += row["cost"] or Decimal(0)
        for currency, amount in row["revenue"].items():
            self.revenue[currency] = self.revenue.get(currency, Decimal(0)) + Decimal(amount)
        for name in ARRAYS:
            if row[name]:
                self.parts[name].append(numpy.frombuffer(row[name], dtype=FLOATS))
        for name, items in row["worst"].items():
            self.worst.setdefault(name, []).extend((v, i) for v, i in items)

    def __getattr__(self, name: str) -> Any:
        counts = self.__dict__.get("counts", {})
        if name in counts:
            return counts[name]
        raise AttributeError(name)

    def distribution(self, name: str) -> Distribution:
        found = self._distributions.get(name)
        if found is None:
            parts = self.parts[name]
            found = self._distributions[name] = Distribution(
                numpy.concatenate(parts) if parts else numpy.empty(0))
        return found

    @property
    def first_response(self) -> Distribution:
        return self.distribution("first_response")

    @property
    def first_human(self) -> Distribution:
        return self.distribution("first_human")

    @property
    def resolution_time(self) -> Distribution:
        return self.distribution("resolution_time")

    @property
    def time_to_human(self) -> Distribution:
        return self.distribution("time_to_human")

    @property
    def resolved_rate(self) -> float | None:
        return _rate(self.counts["resolved"], self.conversations)

    @property
    def contained_rate(self) -> float | None:
        return _rate(self.counts["contained"], self.conversations)

    @property
    def escalation_rate(self) -> float | None:
        return _rate(self.counts["escalated"], self.conversations)

    @property
    def repeat_rate(self) -> float | None:
        return _rate(self.counts["repeat"], self.conversations)

    @property
    def conversion_rate(self) -> float | None:
        return _rate(self.counts["converted"], self.conversations)

    @property
    def csat(self) -> float | None:
        return _rate(self.sums["csat_sum"], self.counts["rated"])

    @property
    def nps(self) -> float | None:
        """Promoters minus detractors, in points (-100..100)."""
        n = self.counts["nps_n"]
        return 100 * (self.counts["promoters"] - self.counts["detractors"]) / n if n else None

    @property
    def cost_per_conversation(self) -> Decimal | None:
        return self.cost / self.counts["costed"] if self.counts["costed"] else None

    @property
    def warmth_start(self) -> float | None:
        return _rate(self.sums["warmth_start"], self.counts["sentiment_n"])

    @property
    def warmth_end(self) -> float | None:
        return _rate(self.sums["warmth_end"], self.counts["sentiment_n"])

    @property
    def sla_rate(self) -> float | None:
        return _rate(self.counts["sla_met"], self.counts["sla_waits"])

    @property
    def qa_score(self) -> float | None:
        return _rate(self.sums["qa_sum"], self.counts["qa_reviews"])

    @property
    def qa_pass_rate(self) -> float | None:
        n = self.counts["qa_reviews"]
        return (n - self.counts["qa_failed"]) / n if n else None

    def worst_cases(self, name: str, n: int = WORST_N) -> list[tuple[float, int]]:
        """The period's n worst conversations of a WORST list, as (value, conversation id):
        the union of each day's top n holds the period's top n."""
        items = self.worst.get(name, [])
        order = (lambda i: (-i[0], i[1])) if WORST[name] else (lambda i: (i[0], i[1]))
        return sorted(items, key=order)[:n]


_FIELDS = ("day", "channel", "kind", "key", "label", "conversations", *COUNTS, *SUMS, "cost",
           "revenue", *ARRAYS, "worst")


def _rows(period: Period, **where: Any) -> Iterable[dict[str, Any]]:
    """The period's rows, fetched at once (a few hundred rows a page: no server-side
    cursor, which PostgreSQL would first copy whole for a cursor held past the query)."""
    qs = OutcomeDaily.objects.filter(day__gte=period.first, day__lte=period.last, **where)
    if period.channel:
        qs = qs.filter(channel=period.channel)
    return qs.values(*_FIELDS)


@dataclass
class OutcomeReport:
    period: Period
    total: OutcomeFigures
    by_channel: list[OutcomeFigures]
    by_bucket: list[OutcomeFigures]  # how the last handoff ended
    by_day: list[OutcomeFigures]  # every day of the period, empty ones included


def outcome_report(*, period: Period) -> OutcomeReport:
    """Customer outcomes of the conversations started in the period (and channel): one
    query. It reads the rows per handoff outcome (`bucket`) only: each conversation is in
    exactly one bucket, so a day and channel's buckets add up to its `channel` row (counts,
    sums, times, worst cases alike), and reading both would carry every time twice."""
    total = OutcomeFigures(key="all")
    channels: dict[str, OutcomeFigures] = {}
    buckets: dict[str, OutcomeFigures] = {}
    days = {d: OutcomeFigures(key=d.isoformat()) for d in period.day_list()}
    for row in _rows(period, kind="bucket"):
        buckets.setdefault(row["key"], OutcomeFigures(key=row["key"])).add(row)
        total.add(row)
        channels.setdefault(row["channel"], OutcomeFigures(key=row["channel"])).add(row)
        if row["day"] in days:
            days[row["day"]].add(row)
    return OutcomeReport(
        period=period, total=total, by_channel=[channels[c] for c in sorted(channels)],
        by_bucket=[buckets[b] for b in CSAT_BUCKETS if b in buckets],
        by_day=list(days.values()))


def outcome_groups(*, period: Period, kind: str) -> list[OutcomeFigures]:
    """The period's figures per agent, queue, team, model or prompt version (GROUP_KINDS),
    most conversations first: one query."""
    if kind not in GROUP_KINDS:
        raise ValueError(f"unknown group {kind!r}")
    groups: dict[str, OutcomeFigures] = {}
    for row in _rows(period, kind=kind):
        groups.setdefault(row["key"], OutcomeFigures(key=row["key"])).add(row)
    return sorted(groups.values(), key=lambda g: (-g.conversations, g.key))


# --- release comparison ------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a model or prompt version (kind, key), or every
    conversation (kind "channel", key ""), over a period."""

    kind: str
    key: str
    period: Period

    @property
    def label(self) -> str:
        if self.kind == "channel":
            return f"{self.period.first:%d %b} – {self.period.last:%d %b %Y}"
        return f"{'Model' if self.kind == 'model' else 'Prompt'} {self.key}"


def side_figures(side: Side) -> OutcomeFigures:
    figures = OutcomeFigures(key=side.key or "all")
    for row in _rows(side.period, kind=side.kind, key=side.key):
        figures.add(row)
    return figures


@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None  # 95% confidence interval
    high: float | None
    n: int


@dataclass(frozen=True)
class Comparison:
    name: str
    label: str
    kind: str  # rate, mean, nps, time
    a: Estimate
    b: Estimate
    p_value: float | None  # two-sided; None: not enough data
    test: str

    @property
    def difference(self) -> float | None:
        if self.a.value is None or self.b.value is None:
            return None
        return self.b.value - self.a.value

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < 0.05


def wilson(part: int, n: int) -> Estimate:
    """A proportion with its Wilson score interval (good at small n and near 0 or 1)."""
    if not n:
        return Estimate(None, None, None, 0)
    p = part / n
    centre = (p + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / (1 + Z95 ** 2 / n)
    return Estimate(p, max(centre - half, 0.0), min(centre + half, 1.0), n)


def _mean(total: float, squares: float, n: int, lowest: float = -math.inf,
          highest: float = math.inf) -> tuple[Estimate, float | None]:
    """A mean with its t interval (kept within the scale's bounds), from the sum and the
    sum of squares; and the sd."""
    if not n:
        return Estimate(None, None, None, 0), None
    mean = total / n
    if n < 2:
        return Estimate(mean, None, None, n), None
    sd = math.sqrt(max(squares - total * total / n, 0.0) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return Estimate(mean, max(mean - half, lowest), min(mean + half, highest), n), sd


def _two_proportions(a: int, n_a: int, b: int, n_b: int) -> float | None:
    """Two-sided p of a difference of proportions: Fisher's exact test (any n)."""
    if not n_a or not n_b:
        return None
    return float(stats.fisher_exact([[a, n_a - a], [b, n_b - b]])[1])


def _nps(f: OutcomeFigures) -> tuple[Estimate, float | None]:
    n = f.counts["nps_n"]
    if not n:
        return Estimate(None, None, None, 0), None
    p, d = f.counts["promoters"] / n, f.counts["detractors"] / n
    variance = (p + d - (p - d) ** 2) / n
    half = Z95 * math.sqrt(variance) * 100
    value = 100 * (p - d)
    return Estimate(value, max(value - half, -100), min(value + half, 100), n), variance


def _median(ordered: numpy.ndarray) -> Estimate:
    """The median of sorted values with a distribution-free interval (order statistics,
    binomial)."""
    n = len(ordered)
    if not n:
        return Estimate(None, None, None, 0)
    low = max(int(math.floor(n / 2 - Z95 * math.sqrt(n) / 2)), 0)
    high = min(int(math.ceil(n / 2 + Z95 * math.sqrt(n) / 2)), n - 1)
    return Estimate(float(numpy.median(ordered)), float(ordered[low]), float(ordered[high]), n)


COMPARED = (
    ("resolved", "Resolution rate"), ("contained", "Containment (deflection)"),
    ("escalated", "Escalation rate"), ("repeat", "Repeat contact"),
    ("converted", "Conversion rate"),
)
COMPARED_TIMES = (
    ("first_response", "First response, median"), ("first_human", "First human reply, median"),
    ("resolution_time", "Resolution time, median"), ("time_to_human", "Time to human, median"),
)


def outcome_compare(*, a: Side, b: Side) -> tuple[OutcomeFigures, OutcomeFigures,
                                                  list[Comparison]]:
    """Every figure of two sides with 95% intervals and a two-sided test: Fisher's exact
    test for rates, Welch's t-test for CSAT and cost, a z-test for NPS, Mann-Whitney U for
    times (medians). Two queries."""
    fa, fb = side_figures(a), side_figures(b)
    out = []
    for name, label in COMPARED:
        out.append(Comparison(
            name, label, "rate", wilson(fa.counts[name], fa.conversations),
            wilson(fb.counts[name], fb.conversations),
            _two_proportions(fa.counts[name], fa.conversations, fb.counts[name],
                             fb.conversations), "Fisher's exact test"))
    out.append(Comparison(
        "sla", "SLA met", "rate", wilson(fa.counts["sla_met"], fa.counts["sla_waits"]),
        wilson(fb.counts["sla_met"], fb.counts["sla_waits"]),
        _two_proportions(fa.counts["sla_met"], fa.counts["sla_waits"], fb.counts["sla_met"],
                         fb.counts["sla_waits"]), "Fisher's exact test"))
    for name, label, total, squares, n, bounds in (
            ("csat", "CSAT (1–5)", "csat_sum", "csat_sq", "rated", (1.0, 5.0)),
            ("cost", "AI cost per conversation", None, "cost_sq", "costed", (0.0, math.inf))):
        ea, sa = _mean(float(fa.cost) if total is None else fa.sums[total], fa.sums[squares],
                       fa.counts[n], *bounds)
        eb, sb = _mean(float(fb.cost) if total is None else fb.sums[total], fb.sums[squares],
                       fb.counts[n], *bounds)
        p = None
        if sa is not None and sb is not None and (sa or sb):
            p = float(stats.ttest_ind_from_stats(ea.value, sa, ea.n, eb.value, sb, eb.n,
                                                 equal_var=False).pvalue)
        out.append(Comparison(name, label, "mean", ea, eb, p, "Welch's t-test"))
    ea, va = _nps(fa)
    eb, vb = _nps(fb)
    p = None
    if va is not None and vb is not None and (va + vb) > 0:
        z = (eb.value - ea.value) / 100 / math.sqrt(va + vb)
        p = float(2 * stats.norm.sf(abs(z)))
    out.append(Comparison("nps", "NPS", "nps", ea, eb, p, "z-test"))
    for name, label in COMPARED_TIMES:
        # Sorted once: the medians read them, and Mann-Whitney's ranking (a stable sort of
        # both samples together) then merges two sorted runs instead of sorting from
        # scratch (same U and p: the test does not depend on the order within a sample).
        xa = numpy.sort(fa.distribution(name).values)
        xb = numpy.sort(fb.distribution(name).values)
        p = None
        if len(xa) and len(xb):
            p = float(stats.mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
        out.append(Comparison(name, label, "time", _median(xa), _median(xb), p,
                              "Mann-Whitney U"))
    return fa, fb, out


def before_after(*, period: Period, split: date) -> tuple[Side, Side]:
    """Every conversation before `split` vs from `split` on, within the period."""
    before = Period(days=max((split - period.first).days, 1), first=period.first,
                    last=max(split - timedelta(days=1), period.first), channel=period.channel)
    after = Period(days=max((period.last - split).days + 1, 1), first=split, last=period.last,
                   channel=period.channel)
    return Side("channel", "", before), Side("channel", "", after)


def release_keys(*, period: Period) -> dict[str, list[str]]:
    """The models and prompt versions that took steps in the period (for the pickers)."""
    found: dict[str, set[str]] = defaultdict(set)
    qs = OutcomeDaily.objects.filter(day__gte=period.first, day__lte=period.last,
                                     kind__in=["model", "prompt"])
    for kind, key in qs.values_list("kind", "key").distinct():
        found[kind].add(key)
    return {kind: sorted(found[kind]) for kind in ("model", "prompt")}
