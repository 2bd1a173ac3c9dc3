"""What the outcome report pages show, built from audit.selectors_outcomes: tiles, charts
(inline SVG from audit.charts, as the dashboards) and tables. Every number links to the
inbox filtered to the conversations behind it (dates by start, the reports' periods), and
where the number counts conversations `count` says how many that list holds."""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.urls import reverse
from django.utils.http import urlencode

from .charts import Point, Series, bar_chart, line_chart, nice_max
from .dashboard_charts import CHANNEL_LABELS, Chart, _day_label, _legend, csat, minutes, money, pct
from .dashboard_selectors import CSAT_BUCKET_LABELS, Period
from .selectors_outcomes import Comparison, Distribution, OutcomeFigures, OutcomeReport, Side

GROUP_LABELS = {"agent": "Agent", "queue": "Queue", "team": "Team", "model": "AI model",
                "prompt": "Prompt version"}
GROUP_PARAM = {"agent": "agent", "queue": "queue", "team": "team", "model": "model",
               "prompt": "prompt_version"}
WORST_LABELS = {"expensive": "Most expensive (AI cost)", "slowest": "Slowest to resolve",
                "lowest_csat": "Lowest CSAT", "longest_wait": "Longest wait for a human"}


@dataclass
class Cell:
    text: str
    href: str = ""
    note: str = ""  # the n behind the figure
    count: int | None = None  # conversations the link lists (None: not a count)
    sort: float | str | None = None  # the value the column sorts by


@dataclass
class Tile:
    label: str
    value: str
    href: str
    note: str = ""
    count: int | None = None


@dataclass
class Table:
    caption: str
    head: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    empty: str = "No conversation started in this period."
    sort_keys: list[str] = field(default_factory=list)  # per column, for sortable tables


@dataclass
class ReportView:
    tiles: list[Tile]
    charts: list[Chart]
    tables: list[Table]


@lru_cache(maxsize=4)
def _inbox(prefix_key: str) -> str:
    return reverse("audit:inbox")


def link(period: Period, *, day: date | None = None, **filters: str) -> str:
    """The inbox listing the conversations started in the period (or on `day`) that the
    filters keep."""
    from django.urls import get_script_prefix

    params = {"channel": period.channel, **filters, "dates": "started",
              "since": (day or period.first).isoformat(),
              "until": (day or period.last).isoformat()}
    return f"{_inbox(get_script_prefix())}?{urlencode({k: v for k, v in params.items() if v})}"


def seconds(value: float | None) -> str:
    return minutes(value)


def nps_text(value: float | None) -> str:
    return "—" if value is None else f"{value:+.0f}"


def revenue_text(revenue: dict[str, Decimal]) -> str:
    if not revenue:
        return "—"
    return " · ".join(f"{amount:,.2f} {currency}" for currency, amount in sorted(revenue.items()))


def warmth(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}"


def _times(d: Distribution) -> str:
    return f"{seconds(d.p50)} · {seconds(d.p90)}"


def _tiles(p: Period, t: OutcomeFigures) -> list[Tile]:
    n = t.conversations
    return [
        Tile("First response", _times(t.first_response), link(p, outcome="responded"),
             f"p50 · p90, any responder · {t.first_response.n} answered", t.first_response.n),
        Tile("First human reply", _times(t.first_human), link(p, outcome="human_replied"),
             f"p50 · p90 · {t.first_human.n} with a human reply", t.first_human.n),
        Tile("Resolution time", _times(t.resolution_time), link(p, outcome="resolved"),
             f"p50 · p90 · {t.resolution_time.n} resolved", t.resolved),
        Tile("Resolution rate", pct(t.resolved_rate), link(p, outcome="resolved"),
             f"{t.resolved} of {n} conversations", t.resolved),
        Tile("Contained (deflected)", pct(t.contained_rate), link(p, outcome="contained"),
             f"{t.contained} of {n}: resolved, no human, no return", t.contained),
        Tile("Escalation rate", pct(t.escalation_rate), link(p, outcome="escalated"),
             f"{t.escalated} of {n} conversations", t.escalated),
        Tile("Repeat contact", pct(t.repeat_rate), link(p, outcome="repeat"),
             f"{t.repeat} of {n} came back", t.repeat),
        Tile("CSAT", csat(t.csat), link(p, outcome="rated"), f"{t.rated} rated (1–5)", t.rated),
        Tile("NPS", nps_text(t.nps), link(p, outcome="nps"),
             f"{t.promoters} promoters, {t.detractors} detractors of {t.nps_n}", t.nps_n),
        Tile("Conversion", pct(t.conversion_rate), link(p, outcome="converted"),
             f"{t.converted} of {n} conversations", t.converted),
        Tile("Revenue", revenue_text(t.revenue), link(p, outcome="revenue"),
             "totals per currency, never converted"),
        Tile("Customer warmth", f"{warmth(t.warmth_start)} → {warmth(t.warmth_end)}",
             link(p, outcome="sentiment"),
             f"start → end, 0–100, {t.sentiment_n} conversations", t.sentiment_n),
    ]


def _figure_cells(p: Period, f: OutcomeFigures, **scope: str) -> list[Cell]:
    """The outcome columns of one row (channel, handoff outcome, group)."""
    n = f.conversations
    return [
        Cell(str(n), link(p, **scope), count=n, sort=n),
        Cell(_times(f.first_response), link(p, outcome="responded", **scope),
             f"n={f.first_response.n}", f.first_response.n, f.first_response.p50),
        Cell(_times(f.first_human), link(p, outcome="human_replied", **scope),
             f"n={f.first_human.n}", f.first_human.n, f.first_human.p50),
        Cell(pct(f.resolved_rate), link(p, outcome="resolved", **scope), f"{f.resolved} of {n}",
             f.resolved, f.resolved_rate),
        Cell(_times(f.resolution_time), link(p, outcome="resolved", **scope),
             f"n={f.resolution_time.n}", f.resolved, f.resolution_time.p50),
        Cell(pct(f.contained_rate), link(p, outcome="contained", **scope),
             f"{f.contained} of {n}", f.contained, f.contained_rate),
        Cell(pct(f.escalation_rate), link(p, outcome="escalated", **scope),
             f"{f.escalated} of {n}", f.escalated, f.escalation_rate),
        Cell(pct(f.repeat_rate), link(p, outcome="repeat", **scope), f"{f.repeat} of {n}",
             f.repeat, f.repeat_rate),
        Cell(csat(f.csat), link(p, outcome="rated", **scope), f"{f.rated} rated", f.rated,
             f.csat),
        Cell(nps_text(f.nps), link(p, outcome="nps", **scope), f"{f.nps_n} answers", f.nps_n,
             f.nps),
        Cell(pct(f.conversion_rate), link(p, outcome="converted", **scope),
             f"{f.converted} of {n}", f.converted, f.conversion_rate),
        Cell(revenue_text(f.revenue), link(p, outcome="revenue", **scope)),
        Cell(f"{warmth(f.warmth_start)} → {warmth(f.warmth_end)}",
             link(p, outcome="sentiment", **scope), f"n={f.sentiment_n}", f.sentiment_n,
             None if f.warmth_end is None else f.warmth_end - (f.warmth_start or 0)),
    ]


FIGURE_HEAD = ["Conversations", "First response p50 · p90", "First human p50 · p90",
               "Resolved", "Resolution time p50 · p90", "Contained", "Escalated", "Repeat",
               "CSAT", "NPS", "Conversion", "Revenue", "Warmth start → end"]


def _distributions(p: Period, t: OutcomeFigures) -> Table:
    table = Table("Distributions (p50 · p90 · p99)", ["Time", "n", "p50", "p90", "p99"])
    for label, d, outcome in (
            ("First response, any responder", t.first_response, "responded"),
            ("First human reply", t.first_human, "human_replied"),
            ("Resolution time", t.resolution_time, "resolved"),
            ("Time to human (per handoff)", t.time_to_human, "")):
        href = link(p, outcome=outcome) if outcome else link(p, handoff_state="any")
        table.rows.append([Cell(label, href), Cell(str(d.n), href),
                           *[Cell(seconds(v), href) for v in (d.p50, d.p90, d.p99)]])
    return table


def worst_tables(p: Period, f: OutcomeFigures, replay: Callable[[int], str],
                 caption: str = "") -> list[Table]:
    tables = []
    for name, label in WORST_LABELS.items():
        table = Table(f"{caption}{label}", ["Conversation", "Value"],
                      empty="None in this period.")
        for value, pk in f.worst_cases(name):
            text = (money(value) if name == "expensive" else csat(value)
                    if name == "lowest_csat" else seconds(value))
            table.rows.append([Cell(f"#{pk}", replay(pk)), Cell(text, replay(pk))])
        tables.append(table)
    return tables


def _charts(r: OutcomeReport, width: int) -> list[Chart]:
    p, days = r.period, r.by_day

    def day_link(key: str, outcome: str) -> str:
        return link(p, day=date.fromisoformat(key), outcome=outcome)

    rates = line_chart(
        title="Resolution, containment, escalation and repeat contact per day", width=width,
        y_format=lambda v: f"{100 * v:.0f}%", y_max=1.0,
        series=[Series(label, [Point(_day_label(f.key), getattr(f, attr),
                                     day_link(f.key, outcome), pct(getattr(f, attr)))
                               for f in days])
                for label, attr, outcome in (
                    ("Resolved", "resolved_rate", "resolved"),
                    ("Contained", "contained_rate", "contained"),
                    ("Escalated", "escalation_rate", "escalated"),
                    ("Repeat", "repeat_rate", "repeat"))])
    longest = max((f.first_response.p90 or 0 for f in days), default=0)
    unit, per = ("hours", 3600) if longest > 3 * 3600 else ("minutes", 60)
    responses = line_chart(
        title=f"First response per day, p50 and p90 ({unit})", width=width,
        y_format=lambda v: f"{v / per:.3g}", y_max=nice_max(longest / per) * per, y_scale=per,
        series=[Series(name, [Point(_day_label(f.key), getattr(f.first_response, name),
                                    day_link(f.key, "responded"),
                                    seconds(getattr(f.first_response, name))) for f in days])
                for name in ("p50", "p90")])
    rows = [(CHANNEL_LABELS.get(f.key, f.key), f, {"channel": f.key}) for f in r.by_channel] + [
        (CSAT_BUCKET_LABELS[f.key], f, {"bucket": f.key})
        for f in r.by_bucket]
    sentiment = line_chart(
        title="Customer warmth at the start and the end (0–100)", width=width, y_max=1.0,
        y_format=lambda v: f"{100 * v:.0f}",
        series=[Series(name, [Point(label, getattr(f, attr),
                                    _sentiment_link(p, scope),
                                    f"{warmth(getattr(f, attr))} (n={f.sentiment_n})")
                              for label, f, scope in rows])
                for name, attr in (("Start", "warmth_start"), ("End", "warmth_end"))])
    nps = bar_chart(
        title="NPS by channel (−100 to 100, shown from 0)", x_max=100, width=width,
        color="#7c3aed",
        points=[Point(CHANNEL_LABELS.get(f.key, f.key), max(f.nps, 0) if f.nps is not None
                      else None, link(replace(p, channel=f.key), outcome="nps"),
                      f"{nps_text(f.nps)} (n={f.nps_n})") for f in r.by_channel])
    nothing = "Nothing to draw in this period."
    each_day = "Each point opens that day's conversations in the inbox."
    return [
        Chart("Outcome rates per day", rates, rates, each_day,
              _legend("Resolved", "Contained", "Escalated", "Repeat"),
              "" if any(f.conversations for f in days) else nothing),
        Chart(f"First response per day ({unit})", responses, responses,
              "From the customer's first message to the first reply by the AI or a human.",
              _legend("p50", "p90"), "" if longest else "No reply to a customer yet."),
        Chart("Customer sentiment, start vs end", sentiment, sentiment,
              "Warmth of the first and the last customer message, by channel and by how "
              "the last handoff ended.", _legend("Start", "End"),
              "" if any(f.sentiment_n for _, f, _ in rows) else
              "No conversation with two scored customer messages."),
        Chart("NPS by channel", nps, nps, "A negative NPS draws as an empty bar; the figure "
              "is in the label.", empty="" if any(f.nps_n for f in r.by_channel) else
              "No NPS answer in this period."),
    ]




def _sentiment_link(p: Period, scope: dict[str, str]) -> str:
    if "channel" in scope:
        return link(replace(p, channel=scope["channel"]), outcome="sentiment")
    return link(p, outcome=f"last_{scope['bucket']}")


def report_view(r: OutcomeReport, replay: Callable[[int], str] | None = None) -> ReportView:
    p, t = r.period, r.total
    replay = replay or (lambda pk: reverse("audit:replay", args=[pk]))
    channels = Table("By channel", ["Channel", *FIGURE_HEAD])
    for f in (r.by_channel + [t]) if len(r.by_channel) > 1 else r.by_channel:
        scoped = replace(p, channel="" if f.key == "all" else f.key)
        label = "All channels" if f.key == "all" else CHANNEL_LABELS.get(f.key, f.key)
        channels.rows.append([Cell(label, link(scoped)), *_figure_cells(scoped, f)])
    buckets = Table("By how the last handoff ended", ["Handoff outcome", *FIGURE_HEAD])
    for f in r.by_bucket:
        # The bucket is the row's filter; a figure's own outcome filter would replace it,
        # so the row's cells list the bucket's conversations, counted by the first cell.
        scope = link(p, outcome=f"last_{f.key}")
        cells = [replace(c, href=scope, count=None) for c in _figure_cells(p, f)]
        cells[0] = replace(cells[0], count=f.conversations)
        buckets.rows.append([Cell(CSAT_BUCKET_LABELS[f.key], scope), *cells])
    days = Table("Day by day", ["Day", *FIGURE_HEAD])
    for f in reversed(r.by_day):
        d = date.fromisoformat(f.key)
        days.rows.append([Cell(f.key, link(p, day=d)), *_figure_cells(
            Period(days=1, first=d, last=d, channel=p.channel), f)])
    return ReportView(
        tiles=_tiles(p, t),
        charts=[replace(wide, svg_narrow=narrow.svg) for wide, narrow in
                zip(_charts(r, 560), _charts(r, 340), strict=True)],
        tables=[channels, buckets, _distributions(p, t), *worst_tables(p, t, replay), days],
    )


# --- per agent, queue, team, model, prompt --------------------------------------------------

GROUP_HEAD = ["Conversations", "Handoffs taken", "Time to first reply p50 · p90", "SLA met",
              "Stalled", "Dropped", "Resolved", "CSAT", "QA score", "NPS", "Contained",
              "Repeat"]
GROUP_SORTS = ("conversations", "handoffs", "reply_p50", "sla", "stalled", "dropped",
               "resolved", "csat", "qa", "nps", "contained", "repeat")


def group_rows(p: Period, kind: str, groups: list[OutcomeFigures]) -> Table:
    label = GROUP_LABELS[kind]
    table = Table(f"By {label if kind == 'model' else label.lower()}", [label, *GROUP_HEAD],
                  empty="No conversation of this kind in the period.",
                  sort_keys=["name", *GROUP_SORTS])
    param = GROUP_PARAM[kind]
    for g in groups:
        scope = {param: g.key}
        n = g.conversations
        tth = g.time_to_human
        table.rows.append([
            Cell(g.label or g.key, link(p, **scope), g.key if g.label else "", sort=g.label
                 or g.key),
            Cell(str(n), link(p, **scope), count=n, sort=n),
            Cell(str(g.handoffs), link(p, handoff_state="any", **scope), sort=g.handoffs),
            Cell(_times(tth), link(p, handoff_state="any", **scope), f"n={tth.n}",
                 sort=tth.p50),
            Cell(pct(g.sla_rate), link(p, handoff_state="any", **scope),
                 f"{g.sla_met} of {g.sla_waits} waits", sort=g.sla_rate),
            Cell(str(g.stalled), link(p, flag_kind="handoff_stalled", **scope),
                 sort=g.stalled),
            Cell(str(g.dropped), link(p, flag_kind="handoff_dropped", **scope),
                 sort=g.dropped),
            Cell(pct(g.resolved_rate), link(p, outcome="resolved", **scope),
                 f"{g.resolved} of {n}", g.resolved, g.resolved_rate),
            Cell(csat(g.csat), link(p, outcome="rated", **scope), f"{g.rated} rated",
                 g.rated, g.csat),
            Cell("—" if g.qa_score is None else f"{g.qa_score:.0f}",
                 link(p, qa="reviewed", **scope),
                 f"{g.qa_reviews} reviews, {g.qa_failed} failed", sort=g.qa_score),
            Cell(nps_text(g.nps), link(p, outcome="nps", **scope), f"{g.nps_n} answers",
                 g.nps_n, g.nps),
            Cell(pct(g.contained_rate), link(p, outcome="contained", **scope),
                 f"{g.contained} of {n}", g.contained, g.contained_rate),
            Cell(pct(g.repeat_rate), link(p, outcome="repeat", **scope), f"{g.repeat} of {n}",
                 g.repeat, g.repeat_rate),
        ])
    return table


def table_sort(table: Table, key: str, descending: bool) -> None:
    """Sort the rows by a column (`Table.sort_keys`); rows without a value go last."""
    if key not in table.sort_keys:
        return
    i = table.sort_keys.index(key)

    def order(row: list[Cell]) -> tuple[Any, ...]:
        value = row[i].sort
        return (value is None, value if value is not None else 0)

    present = [r for r in table.rows if r[i].sort is not None]
    missing = [r for r in table.rows if r[i].sort is None]
    table.rows = sorted(present, key=order, reverse=descending) + missing


# --- comparison ---------------------------------------------------------------------------


def _estimate(c: Comparison, side: str) -> Cell:
    e = getattr(c, side)
    fmt: Callable[[float | None], str] = {
        "rate": pct, "time": seconds, "nps": nps_text,
        "mean": (lambda v: money(v) if c.name == "cost" else csat(v))}[c.kind]
    if e.value is None:
        return Cell("—", note=f"n={e.n}")
    interval = "" if e.low is None else f"95% CI {fmt(e.low)} – {fmt(e.high)} · "
    return Cell(fmt(e.value), note=f"{interval}n={e.n}")


def compare_table(a: Side, b: Side, rows: list[Comparison]) -> Table:
    table = Table("Side by side", ["Figure", a.label, b.label, "Difference", "Significance"])
    for c in rows:
        diff = c.difference
        if diff is None:
            text = "—"
        elif c.kind == "rate":
            text = f"{100 * diff:+.1f} pts"
        elif c.kind == "time":
            text = f"{'+' if diff >= 0 else '−'}{seconds(abs(diff))}"
        elif c.kind == "nps":
            text = f"{diff:+.0f}"
        else:
            text = f"{diff:+.4f}" if c.name == "cost" else f"{diff:+.2f}"
        verdict = "not enough data" if c.p_value is None else (
            f"{'significant' if c.significant else 'not significant'} (p = {c.p_value:.3g})")
        table.rows.append([Cell(c.label), _estimate(c, "a"), _estimate(c, "b"), Cell(text),
                           Cell(verdict, note=c.test)])
    return table


def side_link(side: Side, **filters: str) -> str:
    scope = {GROUP_PARAM[side.kind]: side.key} if side.kind in GROUP_PARAM else {}
    return link(side.period, **scope, **filters)

