"""What the QA results page shows, built from audit.qa_results: charts (weekly pass rate,
pass rate per category) and tables, each linked to the inbox or the reviewed conversation."""

from dataclasses import replace
from datetime import date, timedelta

from django.urls import reverse

from scoring.models import ScorecardCategory

from .charts import Point, Series, bar_chart, line_chart
from .dashboard_charts import CHANNEL_LABELS, Chart, _legend, pct
from .outcome_views import GROUP_PARAM, Cell, ReportView, Table, Tile, link
from .qa_results import PassFigures, QAResults
from .score_words import score_label

QA_GROUPS = {"agent": "Per agent", "channel": "Per channel", "model": "Per AI model",
             "prompt": "Per prompt version"}


def _mean(f: PassFigures, scale: float = 1.0) -> str:
    return "—" if f.mean is None else f"{scale * f.mean:.0f}"


def _row(f: PassFigures, href: str, failed_href: str, *, answers: bool = False,
         note: str = "") -> list[Cell]:
    """Pass rate, mean and failures; the first three link to the conversations counted,
    the failures to those that failed."""
    what = "answers" if answers else "reviews"
    n = len(f.conversations)
    failed = len(f.failed_conversations)
    return [Cell(f.label or f.key, href, note, n),
            Cell(pct(f.pass_rate), href, f"{f.n - f.failed} of {f.n} {what} passed", n),
            Cell(_mean(f, 100 if answers else 1), href, f"n={f.scored}", n),
            Cell(str(f.failed), failed_href,
                 f"in {failed} conversation{'' if failed == 1 else 's'}" if f.failed else "",
                 failed)]


def answer_text(scale: str, value: int) -> str:
    """A reviewer's answer as the scorecard asked it."""
    if scale == ScorecardCategory.Scale.YES_NO:
        return "Yes" if value else "No"
    return f"{value} of 5"


def _category_labels(r: QAResults) -> dict[str, str]:
    labels: dict[str, str] = {}
    for f in r.categories:
        labels.setdefault(f.key.split(":", 1)[1], f.label)
    return labels


def gap_label(auto: str, human: str, labels: dict[str, str]) -> str:
    """'Warmth (automated) vs Empathy (reviewers)'."""
    category = labels.get(human) or human.replace("_", " ")
    return f"{score_label(auto).capitalize()} (automated) vs {category} (reviewers)"


def qa_view(r: QAResults) -> ReportView:
    p = r.period
    reviewed = link(p, qa="reviewed")
    t = r.reviews
    cards_named = {f.key: f.label or f.key for f in r.scorecards}
    critical_n = sum(f.failed for f in r.critical_by_category)
    critical_convs = set().union(*(f.failed_conversations for f in r.critical_by_category))
    tiles = [
        Tile("Reviews", str(t.n), reviewed, f"{len(t.conversations)} conversations reviewed",
             len(t.conversations)),
        Tile("Pass rate", pct(t.pass_rate), reviewed,
             f"{t.n - t.failed} of {t.n} reviews passed", len(t.conversations)),
        Tile("QA score", _mean(t), reviewed, f"mean 0–100 over {t.scored} scored reviews",
             len(t.conversations)),
        Tile("Critical failures", str(critical_n), link(p, qa="critical_failed"),
             f"failing answers in critical categories, in {len(critical_convs)} "
             "conversations", len(critical_convs)),
    ]
    head = ["", "Pass rate", "Mean score (0–100)", "Failed"]
    cards = Table("Per scorecard", ["Scorecard", *head[1:]], empty="No submitted review.")
    cards.rows = [_row(f, link(p, scorecard=f.key), link(p, scorecard=f.key, qa="failed"))
                  for f in r.scorecards]

    def category_row(f: PassFigures) -> list[Cell]:
        card, key = f.key.split(":", 1)
        scoped = {"scorecard": card, "qa_category": key}
        note = cards_named.get(card, card) if len(r.scorecards) > 1 else ""
        if f.critical:
            note = f"{note} · critical" if note else "critical"
        if not f.scored_category:
            n = len(f.conversations)
            href = link(p, **scoped)
            return [Cell(f.label or f.key, href, note, n),
                    Cell("—", href, f"recorded, not scored: {f.n} answers", n),
                    Cell(_mean(f, 100), href, f"n={f.scored}", n), Cell("—")]
        return _row(f, link(p, **scoped), link(p, **scoped, qa="failed"), answers=True,
                    note=note)

    cats = Table("Per category", ["Category", *head[1:]], empty="No submitted review.")
    cats.rows = [category_row(f) for f in r.categories]
    weakest = Table("Weakest categories", ["Category", *head[1:]],
                    empty="No submitted review.")
    weakest.rows = [category_row(f) for f in r.weakest]
    critical = Table("Critical-category failures (latest)", ["Conversation", "Category",
                                                            "Answer"],
                     empty="No critical category failed.")
    for item in r.critical_failures:
        href = reverse("audit:replay", args=[item["conversation"]])
        critical.rows.append([Cell(f"#{item['conversation']}", href),
                              Cell(item["label"], href),
                              Cell(answer_text(item["scale"], item["value"]), href)])
    tables = [cards, weakest, cats, critical]
    for kind, caption in QA_GROUPS.items():
        table = Table(caption, [caption.removeprefix("Per ").capitalize(), *head[1:]],
                      empty="No submitted review.")
        for f in r.groups[kind]:
            if kind == "channel":
                scoped = replace(p, channel=f.key)
                href, failed_href = link(scoped, qa="reviewed"), link(scoped, qa="failed")
            else:
                param = GROUP_PARAM[kind]
                href = link(p, qa="reviewed", **{param: f.key})
                failed_href = link(p, qa="failed", **{param: f.key})
            label = CHANNEL_LABELS.get(f.key, f.key) if kind == "channel" else f.label or f.key
            table.rows.append(_row(replace(f, label=label), href, failed_href,
                                   note=f.key if label != f.key and kind == "agent" else ""))
        tables.append(table)
    gap = Table("Automated scores vs reviewers (0–100)",
                ["Automated vs reviewers", "Automated", "Reviewers", "Gap", "n"],
                empty="No reviewed conversation has both.")
    labels = _category_labels(r)
    for g in r.gap:
        def fmt(v: float | None) -> str:
            return "—" if v is None else f"{100 * v:.0f}"
        gap.rows.append([Cell(gap_label(g["auto"], g["human"], labels)),
                         Cell(fmt(g["auto_mean"])), Cell(fmt(g["human_mean"])),
                         Cell("—" if g["gap"] is None else f"{100 * g['gap']:+.0f}"),
                         Cell(str(g["n"]))])
    tables.append(gap)
    weeks = Table("Week by week", ["Week of", *head[1:]])
    for f in reversed(r.weeks):
        monday = date.fromisoformat(f.key)
        week = replace(p, first=max(monday, p.first), last=min(monday + timedelta(days=6),
                                                                p.last))
        weeks.rows.append(_row(f, link(week, qa="reviewed"), link(week, qa="failed")))
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
                for f in r.categories if f.scored_category])
    nothing = "No submitted review in this period."
    return [
        Chart("Trend per week", trend, trend, "Weeks start on Monday; reviews count by the "
              "week their conversation started.", _legend("Pass rate", "Score"),
              "" if r.reviews.n else nothing),
        Chart("Pass rate per category", cats, cats, "Answers that did not fail ÷ answers.",
              empty="" if r.categories else nothing),
    ]
