"""What the QA results page shows, built from audit.qa_results: charts (weekly pass rate,
pass rate per category) and tables, each linked to the inbox or the reviewed conversation."""

from dataclasses import replace
from datetime import date, timedelta

from django.urls import reverse

from .charts import Point, Series, bar_chart, line_chart
from .dashboard_charts import CHANNEL_LABELS, Chart, _legend, pct
from .outcome_views import GROUP_PARAM, Cell, ReportView, Table, Tile, link
from .qa_results import PassFigures, QAResults

QA_GROUPS = {"agent": "Per agent", "channel": "Per channel", "model": "Per AI model",
             "prompt": "Per prompt version"}


def _mean(f: PassFigures, scale: float = 1.0) -> str:
    return "—" if f.mean is None else f"{scale * f.mean:.0f}"


def _row(f: PassFigures, href: str, *, answers: bool = False) -> list[Cell]:
    what = "answers" if answers else "reviews"
    return [Cell(f.label or f.key, href, f.key if f.label and answers else ""),
            Cell(pct(f.pass_rate), href, f"{f.n - f.failed} of {f.n} {what} passed"),
            Cell(_mean(f, 100 if answers else 1), href, f"n={f.scored}"),
            Cell(str(f.failed), href)]


def qa_view(r: QAResults) -> ReportView:
    p = r.period
    base = link(p)
    t = r.reviews
    tiles = [
        Tile("Reviews", str(t.n), base, f"{len(t.conversations)} conversations reviewed"),
        Tile("Pass rate", pct(t.pass_rate), base, f"{t.n - t.failed} of {t.n} reviews passed"),
        Tile("QA score", _mean(t), base, f"mean 0–100 over {t.scored} scored reviews"),
        Tile("Critical failures", str(sum(f.failed for f in r.critical_by_category)), base,
             "failing answers in critical categories"),
    ]
    head = ["", "Pass rate", "Mean score (0–100)", "Failed"]
    cards = Table("Per scorecard", ["Scorecard", *head[1:]], empty="No submitted review.")
    cards.rows = [_row(f, base) for f in r.scorecards]
    cats = Table("Per category", ["Category", *head[1:]], empty="No submitted review.")
    cats.rows = [_row(f, base, answers=True) for f in r.categories]
    weakest = Table("Weakest categories", ["Category", *head[1:]],
                    empty="No submitted review.")
    weakest.rows = [_row(f, base, answers=True) for f in r.weakest]
    critical = Table("Critical-category failures (latest)", ["Conversation", "Category",
                                                            "Answer"],
                     empty="No critical category failed.")
    for item in r.critical_failures:
        href = reverse("audit:replay", args=[item["conversation"]])
        critical.rows.append([Cell(f"#{item['conversation']}", href),
                              Cell(item["label"], href), Cell(str(item["value"]), href)])
    tables = [cards, weakest, cats, critical]
    for kind, caption in QA_GROUPS.items():
        table = Table(caption, [caption.removeprefix("Per ").capitalize(), *head[1:]],
                      empty="No submitted review.")
        for f in r.groups[kind]:
            scoped = replace(p, channel=f.key) if kind == "channel" else p
            href = link(scoped) if kind == "channel" else link(p, **{GROUP_PARAM[kind]: f.key})
            label = CHANNEL_LABELS.get(f.key, f.key) if kind == "channel" else f.key
            table.rows.append(_row(replace(f, label=label), href))
        tables.append(table)
    gap = Table("Automated scores vs reviewers (0–100)",
                ["Automated → category", "Automated", "Reviewers", "Gap", "n"],
                empty="No reviewed conversation has both.")
    for g in r.gap:
        def fmt(v: float | None) -> str:
            return "—" if v is None else f"{100 * v:.0f}"
        gap.rows.append([Cell(f"{g['auto']} → {g['human']}"), Cell(fmt(g["auto_mean"])),
                         Cell(fmt(g["human_mean"])),
                         Cell("—" if g["gap"] is None else f"{100 * g['gap']:+.0f}"),
                         Cell(str(g["n"]))])
    tables.append(gap)
    weeks = Table("Week by week", ["Week of", *head[1:]])
    for f in reversed(r.weeks):
        monday = date.fromisoformat(f.key)
        href = link(replace(p, first=max(monday, p.first),
                            last=min(monday + timedelta(days=6), p.last)))
        weeks.rows.append(_row(f, href))
    tables.append(weeks)
    return ReportView(tiles=tiles, charts=[
        replace(wide, svg_narrow=narrow.svg) for wide, narrow in
        zip(_charts(r, 560), _charts(r, 340), strict=True)], tables=tables)


def _charts(r: QAResults, width: int) -> list[Chart]:
    trend = line_chart(
        title="QA pass rate and score per week", width=width, y_max=1.0,
        y_format=lambda v: f"{100 * v:.0f}%",
        series=[Series("Pass rate", [Point(f.key[5:], f.pass_rate, "", pct(f.pass_rate))
                                     for f in r.weeks]),
                Series("Score", [Point(f.key[5:], None if f.mean is None else f.mean / 100,
                                       "", _mean(f)) for f in r.weeks])])
    cats = bar_chart(
        title="Pass rate per category", x_max=1.0, width=width, color="#0e9384",
        points=[Point(f.label or f.key, f.pass_rate, "", f"{pct(f.pass_rate)} (n={f.n})")
                for f in r.categories])
    nothing = "No submitted review in this period."
    return [
        Chart("Trend per week", trend, trend, "Weeks start on Monday; reviews count by the "
              "week their conversation started.", _legend("Pass rate", "Score"),
              "" if r.reviews.n else nothing),
        Chart("Pass rate per category", cats, cats, "Answers that did not fail ÷ answers.",
              empty="" if r.categories else nothing),
    ]
