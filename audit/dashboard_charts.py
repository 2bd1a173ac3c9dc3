"""What the dashboards page shows, built from a Dashboard: headline tiles, charts (inline
SVG from audit.charts) and tables, each figure formatted for people and linked to the
inbox filtered to the conversations behind it."""

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.safestring import SafeString

from conversations.models import Channel, Flag

from .charts import PALETTE, Point, Series, bar_chart, line_chart, nice_max
from .dashboard_selectors import Dashboard, Period, Release, inbox_link

CHANNEL_LABELS = dict(Channel.choices)
DROPPED, STALLED = Flag.Kind.HANDOFF_DROPPED, Flag.Kind.HANDOFF_STALLED


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def money(value: Decimal | float | None) -> str:
    if value is None:
        return "—"
    if not value:
        return "$0"
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def csat(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


@dataclass
class Cell:
    text: str
    href: str = ""
    note: str = ""  # small print under the figure (the counts behind a rate)


@dataclass
class Tile:
    label: str
    value: str
    href: str
    note: str = ""


@dataclass
class Table:
    caption: str
    head: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    empty: str = "No data in this period."


@dataclass
class Chart:
    heading: str
    svg: SafeString
    svg_narrow: SafeString  # the same chart drawn for phones (legible labels at 390 px)
    note: str = ""
    legend: list[tuple[str, str]] = field(default_factory=list)  # (name, colour)
    empty: str = ""  # shown instead of the drawing when there is nothing to draw


def _legend(*names: str) -> list[tuple[str, str]]:
    return [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(names)]


@dataclass
class DashboardView:
    tiles: list[Tile]
    charts: list[Chart]
    tables: list[Table]


def _sla(metrics: Any, kinds: list[str], link: str) -> list[Cell]:
    cells = []
    for kind in kinds:
        figures = metrics.sla.get(kind)
        if figures is None or figures.rate is None:
            cells.append(Cell("—"))
            continue
        cells.append(Cell(pct(figures.rate), link,
                          f"{figures.met} of {figures.met + figures.breached}"))
    return cells


def _tiles(board: Dashboard) -> list[Tile]:
    p, t, c = board.period, board.total, board.costs
    met = sum(f.met for f in t.sla.values())
    decided = met + sum(f.breached for f in t.sla.values())
    return [
        Tile("Handoff rate", pct(t.handoff_rate), inbox_link(p, handoff_state="any"),
             f"{t.conversations_handed_off or 0} of {t.conversations_eligible or 0} "
             "conversations with the AI"),
        Tile("Time to human", f"{minutes(t.time_to_human_p50)} · {minutes(t.time_to_human_p90)}",
             inbox_link(p, handoff_state="any"),
             f"p50 · p90 over {t.reached_human} handoff{'s' * (t.reached_human != 1)} "
             "that reached a human"),
        Tile("SLA met", pct(met / decided if decided else None),
             inbox_link(p, flag_kind=STALLED), f"{met} of {decided} waits, all states"),
        Tile("Dropped", str(t.conversations_dropped), inbox_link(p, flag_kind=DROPPED),
             f"{pct(t.dropped_rate)} of {t.conversations_with_handoff} handed-off conversations"),
        Tile("Stalled", str(t.stalled), inbox_link(p, flag_kind=STALLED),
             "handoffs that sat past an SLA limit"),
        Tile("Returned to AI", pct(t.returned_rate), inbox_link(p, handoff_state="returned"),
             f"{t.conversations_returned} conversation{'s' * (t.conversations_returned != 1)}"),
        Tile("AI cost per conversation", money(c.cost_per_conversation), inbox_link(p),
             f"{money(c.cost)} over {c.conversations} conversations"),
        Tile("AI cost per resolved", money(c.cost_per_resolved), inbox_link(p, resolved="yes"),
             f"{c.resolved} resolved ({pct(c.resolved_rate)})"),
        Tile("CSAT", csat(c.csat), inbox_link(p), f"{c.rated} rated (1–5)"),
    ]


def tone(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}"


def _tone_mean(per_channel: dict[str, dict[str, Any]]) -> float | None:
    count = sum(v["count"] for v in per_channel.values())
    return sum(v["count"] * v["mean"] for v in per_channel.values()) / count if count else None


def _tone_tiles(board: Dashboard) -> list[Tile]:
    t, p = board.tone, board.period
    if t is None:
        return []
    link = inbox_link(p, brand=t.brand)
    count = sum(v["count"] for v in t.per_channel.values())
    return [
        Tile("Brand tone", tone(_tone_mean(t.per_channel)), link,
             f"0–100, {count} scored messages ({t.label})"),
        Tile("Consistency index", tone(t.consistency_index), link,
             "100: every channel sounds the same on average"),
    ]


def _tone_charts(board: Dashboard, width: int) -> list[Chart]:
    t, p = board.tone, board.period
    if t is None:
        return []
    channels = sorted(t.per_channel)
    bars = bar_chart(
        title=f"Brand tone by channel, {t.label} (0–100)", x_max=1.0, width=width,
        color="#0e9384",
        points=[Point(CHANNEL_LABELS.get(c, c), t.per_channel[c]["mean"],
                      inbox_link(replace(p, channel=c), brand=t.brand),
                      f"{tone(t.per_channel[c]['mean'])} (n={t.per_channel[c]['count']})")
                for c in channels],
    )
    days = [d.isoformat() for d in p.day_list()]
    lines = line_chart(
        title=f"Brand tone per day by channel, {t.label} (0–100)", width=width, y_max=1.0,
        y_format=lambda v: f"{100 * v:.0f}",
        series=[Series(CHANNEL_LABELS.get(c, c), [
            Point(_day_label(d), t.daily.get(c, {}).get(d),
                  inbox_link(replace(p, channel=c), day=date.fromisoformat(d), brand=t.brand),
                  tone(t.daily.get(c, {}).get(d))) for d in days]) for c in channels],
    )
    nothing = "" if channels else "No scored message in this period."
    return [
        Chart("Brand tone by channel", bars, bars,
              f"Mean automated brand-tone score of the period's messages, {t.label}.",
              empty=nothing),
        Chart("Brand tone per day", lines, lines, "Each point opens that day's conversations.",
              _legend(*[CHANNEL_LABELS.get(c, c) for c in channels]), nothing),
    ]


def _tone_table(board: Dashboard) -> list[Table]:
    t, p = board.tone, board.period
    if t is None:
        return []
    kinds = ("ai", "human")
    table = Table(f"Tone by channel and author kind ({t.label})",
                  ["Channel", "AI agent", "Human agent", "All authors"],
                  empty="No scored message in this period.")

    def cell(figures: dict[str, Any] | None, link: str) -> Cell:
        if not figures:
            return Cell("—")
        return Cell(tone(figures["mean"]), link,
                    f"± {100 * figures['stddev']:.0f} · {figures['count']} messages")

    for channel in sorted(t.per_channel):
        link = inbox_link(replace(p, channel=channel), brand=t.brand)
        table.rows.append([
            Cell(CHANNEL_LABELS.get(channel, channel), link),
            *[cell(t.by_author.get(channel, {}).get(kind), link) for kind in kinds],
            cell(t.per_channel[channel], link),
        ])
    return [table, _distribution_table(t), _language_table(t)]


def _language_table(t: Any) -> Table:
    table = Table(f"Tone by language ({t.label})",
                  ["Language", "Messages", "Brand tone", "Warmth", "Formality",
                   "Not scored: language"],
                  empty="No message with a detected language in this period.")
    for row in t.languages:
        also = row.get("also") or {}
        table.rows.append([
            Cell(row["name"].capitalize()), Cell(str(row["messages"])),
            Cell(tone(row["mean"]), note=f"{row['scored']} scored"),
            *[Cell(tone(also.get(d)) if also.get(d) is not None else "not scored")
              for d in ("warmth", "formality")],
            Cell(str(row["not_scored"]),
                 note="messages scored without the dimensions this language lacks"
                 if row["not_scored"] else ""),
        ])
    return table


def _distribution_table(t: Any) -> Table:
    d = t.distributions or {}
    small = ", ".join(CHANNEL_LABELS.get(c, c) for c in d.get("too_small", []))
    table = Table(
        f"Channels compared as distributions ({t.label})",
        ["Channels", "Messages", "Distance (0–100)", "Different shape?"],
        empty=(f"Too few scored messages to compare (under {d.get('min_n', 20)} a channel)"
               + (f": {small}." if small else ".")))
    for pair in d.get("pairs", []):
        a, b = CHANNEL_LABELS.get(pair["a"], pair["a"]), CHANNEL_LABELS.get(pair["b"], pair["b"])
        verdict = "yes" if pair["ks_p"] < 0.01 else "no clear difference"
        table.rows.append([
            Cell(f"{a} vs {b}"), Cell(f"{pair['n_a']} / {pair['n_b']}"),
            Cell(f"{100 * pair['wasserstein']:.0f}",
                 note="average points a score moves to match"),
            Cell(verdict, note=f"KS {pair['ks']:.2f}, p = {pair['ks_p']:.2g}"),
        ])
    return table


def _day_label(key: str) -> str:
    return f"{key[8:10]}/{key[5:7]}"


def _charts(board: Dashboard, width: int) -> list[Chart]:
    p = board.period
    days = board.by_day
    longest = max((m.time_to_human_p90 or 0 for m in days), default=0)
    most = max((m.handoffs for m in days), default=0)
    unit, per = ("hours", 3600) if longest > 3 * 3600 else ("minutes", 60)

    def day_link(key: str, **filters: str) -> str:
        return inbox_link(p, day=date.fromisoformat(key), **filters)

    rates = line_chart(
        title="Handoff, dropped and returned rate per day", width=width,
        y_format=lambda v: f"{100 * v:.0f}%",
        series=[
            Series("Handoff rate", [Point(_day_label(m.key), m.handoff_rate,
                                          day_link(m.key, handoff_state="any"),
                                          pct(m.handoff_rate)) for m in days]),
            Series("Dropped rate", [Point(_day_label(m.key), m.dropped_rate,
                                          day_link(m.key, flag_kind=DROPPED),
                                          pct(m.dropped_rate)) for m in days]),
            Series("Returned rate", [Point(_day_label(m.key), m.returned_rate,
                                           day_link(m.key, handoff_state="returned"),
                                           pct(m.returned_rate)) for m in days]),
        ],
    )
    waits = line_chart(
        title=f"Time to human per day, p50 and p90 ({unit})", width=width,
        y_format=lambda v: f"{v / per:.3g}", y_max=nice_max(longest / per) * per, y_scale=per,
        series=[
            Series("p50", [Point(_day_label(m.key), m.time_to_human_p50,
                                 day_link(m.key, handoff_state="any"),
                                 minutes(m.time_to_human_p50)) for m in days]),
            Series("p90", [Point(_day_label(m.key), m.time_to_human_p90,
                                 day_link(m.key, handoff_state="any"),
                                 minutes(m.time_to_human_p90)) for m in days]),
        ],
    )
    counts = line_chart(
        title="Handoffs, dropped and stalled per day", width=width,
        # Small counts: a top of 4 or 8 keeps the four grid steps on whole numbers.
        y_max=next((top for top in (4, 8) if most <= top), None),
        series=[
            Series("Handoffs", [Point(_day_label(m.key), m.handoffs,
                                      day_link(m.key, handoff_state="any")) for m in days]),
            Series("Dropped", [Point(_day_label(m.key), m.conversations_dropped,
                                     day_link(m.key, flag_kind=DROPPED)) for m in days]),
            Series("Stalled", [Point(_day_label(m.key), m.stalled,
                                     day_link(m.key, flag_kind=STALLED)) for m in days]),
        ],
    )
    by_outcome = bar_chart(
        title="CSAT by handoff outcome (1–5)", x_max=5, width=width,
        points=[Point(b.label, b.csat, inbox_link(p, handoff_state=b.key),
                      f"{csat(b.csat)} ({b.rated})") for b in board.csat],
    )
    by_channel = bar_chart(
        title="Handoff rate by channel", x_max=1.0, color="#7c3aed", width=width,
        points=[Point(CHANNEL_LABELS.get(m.key, m.key), m.handoff_rate,
                      inbox_link(p, channel=m.key, handoff_state="any"), pct(m.handoff_rate))
                for m in board.by_channel],
    )
    each_day = "Each point opens that day's conversations in the inbox."
    nothing = "Nothing to draw in this period."
    return [
        Chart("Rates per day", rates, rates, each_day,
              _legend("Handoff rate", "Dropped rate", "Returned rate"),
              "" if any(m.handoff_rate is not None for m in days) else nothing),
        Chart(f"Time to human per day ({unit})", waits, waits,
              "Request to first human reply, wall clock; business time is in the channel table.",
              _legend("p50", "p90"), "" if longest else "No handoff reached a human."),
        Chart("Volume per day", counts, counts, each_day,
              _legend("Handoffs", "Dropped", "Stalled")),
        Chart("CSAT by handoff outcome", by_outcome, by_outcome,
              "By how the conversation's last handoff ended; (n) = rated conversations.",
              empty="" if any(b.rated for b in board.csat) else "No rated conversation."),
        Chart("Handoff rate by channel", by_channel, by_channel,
              empty="" if board.by_channel else nothing),
    ]


def _channel_tables(board: Dashboard) -> list[Table]:
    p = board.period
    handoffs = Table(
        "Handoffs by channel",
        ["Channel", "Handoff rate", "Handoffs", "Time to human p50 · p90",
         "Business time p50 · p90", *[f"SLA met: {k}" for k in board.sla_kinds],
         "Dropped", "Stalled", "Returned"],
    )
    with_total = [*board.by_channel, board.total] if len(board.by_channel) > 1 else board.by_channel
    for m in with_total:
        scoped = replace(p, channel="" if m.key == "all" else m.key)
        link = inbox_link(scoped,
                          handoff_state="any")
        handoffs.rows.append([
            Cell("All channels" if m.key == "all" else CHANNEL_LABELS.get(m.key, m.key), link),
            Cell(pct(m.handoff_rate), link,
                 f"{m.conversations_handed_off or 0} of {m.conversations_eligible or 0}"),
            Cell(str(m.handoffs), link),
            Cell(f"{minutes(m.time_to_human_p50)} · {minutes(m.time_to_human_p90)}", link),
            Cell(f"{minutes(m.time_to_human_business_p50)} · "
                 f"{minutes(m.time_to_human_business_p90)}", link),
            *_sla(m, board.sla_kinds, inbox_link(
                scoped, flag_kind=STALLED)),
            Cell(str(m.conversations_dropped), inbox_link(
                scoped, flag_kind=DROPPED),
                pct(m.dropped_rate)),
            Cell(str(m.stalled), inbox_link(
                scoped, flag_kind=STALLED)),
            Cell(pct(m.returned_rate), inbox_link(
                scoped, handoff_state="returned"),
                str(m.conversations_returned)),
        ])
    costs = Table("Cost, resolution and CSAT by channel",
                  ["Channel", "Conversations", "Resolved", "AI cost", "Per conversation",
                   "Per resolved", "CSAT"])
    rows = [*board.costs_by_channel, board.costs] if len(board.costs_by_channel) > 1 \
        else board.costs_by_channel
    for c in rows:
        scoped = replace(p, channel="" if c.key == "all" else c.key)
        costs.rows.append([
            Cell("All channels" if c.key == "all" else CHANNEL_LABELS.get(c.key, c.key),
                 inbox_link(scoped)),
            Cell(str(c.conversations), inbox_link(scoped)),
            Cell(str(c.resolved), inbox_link(scoped, resolved="yes"), pct(c.resolved_rate)),
            Cell(money(c.cost), inbox_link(scoped)),
            Cell(money(c.cost_per_conversation), inbox_link(scoped)),
            Cell(money(c.cost_per_resolved), inbox_link(scoped, resolved="yes")),
            Cell(csat(c.csat), inbox_link(scoped), f"{c.rated} rated"),
        ])
    return [handoffs, costs]


def _release_table(caption: str, head: str, rows: list[Release], period: Period,
                   param: str) -> Table:
    table = Table(caption, [head, "Conversations", "Handoff rate", "Dropped rate", "AI cost",
                            "Per conversation", "CSAT"],
                  empty="No AI steps with this information in the period.")
    for r in rows:
        link = inbox_link(period, **{param: r.key})
        table.rows.append([
            Cell(r.key, link), Cell(str(r.conversations), link),
            Cell(pct(r.handoff_rate), inbox_link(period, **{param: r.key},
                                                 handoff_state="any"), str(r.handed_off)),
            Cell(pct(r.dropped_rate), inbox_link(period, **{param: r.key}, flag_kind=DROPPED),
                 str(r.dropped)),
            Cell(money(r.cost), link), Cell(money(r.cost_per_conversation), link),
            Cell(csat(r.csat), link, f"{r.rated} rated"),
        ])
    return table


def _daily_table(board: Dashboard) -> Table:
    p = board.period
    table = Table("Day by day", ["Day", "Handoff rate", "Handoffs", "Time to human p50 · p90",
                                 "Dropped", "Stalled", "Returned"])
    for m in reversed(board.by_day):
        day = date.fromisoformat(m.key)
        link = inbox_link(p, day=day, handoff_state="any")
        table.rows.append([
            Cell(m.key, link),
            Cell(pct(m.handoff_rate), link,
                 f"{m.conversations_handed_off or 0} of {m.conversations_eligible or 0}"),
            Cell(str(m.handoffs), link),
            Cell(f"{minutes(m.time_to_human_p50)} · {minutes(m.time_to_human_p90)}", link),
            Cell(str(m.conversations_dropped), inbox_link(p, day=day, flag_kind=DROPPED)),
            Cell(str(m.stalled), inbox_link(p, day=day, flag_kind=STALLED)),
            Cell(pct(m.returned_rate), inbox_link(p, day=day, handoff_state="returned")),
        ])
    return table


def dashboard_view(board: Dashboard) -> DashboardView:
    p = board.period
    return DashboardView(
        tiles=_tiles(board) + _tone_tiles(board),
        charts=[replace(wide, svg_narrow=narrow.svg) for wide, narrow in
                zip(_charts(board, 560) + _tone_charts(board, 560),
                    _charts(board, 340) + _tone_charts(board, 340), strict=True)],
        tables=[
            *_channel_tables(board),
            _release_table("By AI model", "Model", board.models, p, "model"),
            _release_table("By prompt version", "Prompt version", board.prompts, p,
                           "prompt_version"),
            *_tone_table(board),
            _daily_table(board),
        ],
    )
