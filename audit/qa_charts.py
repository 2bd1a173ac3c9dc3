"""The agreement and calibration page's figures as tables and server-side SVG charts
(audit.charts), each figure beside the n it rests on, linking to the conversations behind
it where there are some."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from audit.score_words import score_label
from conversations.flag_text import flag_kind_label

from .charts import PALETTE, Point, Series, bar_chart, line_chart
from .qa_selectors import disagreements

DISAGREEMENT_LINKS = 8  # conversations listed per category; the rest are counted


def fig(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _clamp(value: float | None) -> float | None:
    """Charts draw 0..1; a negative kappa or r is drawn at 0 (its text keeps the sign)."""
    return None if value is None else max(0.0, min(1.0, value))


@dataclass
class AgreementView:
    agreement: list[dict[str, Any]]
    correlation: list[dict[str, Any]]
    precision: list[dict[str, Any]]
    # (title, svg, note, legend [(name, colour)])
    charts: list[tuple[str, SafeString, str, list[tuple[str, str]]]] = field(
        default_factory=list)
    weeks: int = 0
    csv_query: str = ""


def category_words(code: str) -> str:
    """A scorecard category's code as people read it: `brand_tone` -> `Brand tone`."""
    return str(code or "").replace("_", " ").capitalize()


def _week(day: date) -> str:
    return day.strftime("%d %b")


def _weekly(trends: list[dict[str, Any]], part: str, name_of: Any, value_of: Any,
            n_of: Any) -> list[Series]:
    names: list[str] = []
    for week in trends:
        for row in week[part]:
            if value_of(row) is not None and name_of(row) not in names:
                names.append(name_of(row))
    series = []
    for name in names:
        points = []
        for week in trends:
            row = next((r for r in week[part] if name_of(r) == name), None)
            value = value_of(row) if row else None
            points.append(Point(_week(week["week"]), _clamp(value),
                                text=f"{fig(value)} (n {n_of(row)})" if row and value is not None
                                else ""))
        series.append(Series(name, points))
    return series


def agreement_view(*, agreement: list[dict[str, Any]], correlation: list[dict[str, Any]],
                   precision: list[dict[str, Any]], trends: list[dict[str, Any]],
                   start: datetime | None, end: datetime | None,
                   since: date | None, until: date | None, user: Any) -> AgreementView:
    replay = reverse("audit:replay", args=[0])[: -len("0/")]
    inbox = reverse("audit:inbox")
    period = {k: v.isoformat() for k, v in (("since", since), ("until", until)) if v}
    split = disagreements(user=user, start=start, end=end)
    for row in agreement:
        ids = split.get(row["category"], [])
        row["disagreed"] = [(cid, f"{replay}{cid}/") for cid in ids[:DISAGREEMENT_LINKS]]
        row["disagreed_more"] = max(0, len(ids) - DISAGREEMENT_LINKS)
        row["disagreed_n"] = len(ids)
    for row in precision:
        row["href"] = f"{inbox}?{urlencode({'flag_kind': row['kind'], **period})}"
        dismissed = {"flag_kind": row["kind"], "flag_status": "false_positive", **period}
        row["fp_href"] = f"{inbox}?{urlencode(dismissed)}"
    view = AgreementView(agreement, correlation, precision, weeks=len(trends),
                         csv_query=urlencode(period))
    alpha = [Point(category_words(r["category"]), _clamp(r["krippendorff_alpha"]),
                   text=fig(r["krippendorff_alpha"]))
             for r in agreement if r["krippendorff_alpha"] is not None]
    if alpha:
        view.charts.append(("Krippendorff's alpha per category", bar_chart(
            title="Krippendorff's alpha per category", points=alpha, x_max=1.0,
            x_format=fig), "Items reviewed by two or more reviewers; 1 is perfect agreement, "
            "0 is chance.", []))
    prec = [Point(flag_kind_label(r["kind"]), r["precision"], href=r["href"],
                  text=f"{r['precision']:.0%}") for r in precision]
    if prec:
        view.charts.append(("Flag precision per kind", bar_chart(
            title="Flag precision per kind", points=prec, x_max=1.0, color="#067647",
            x_format=lambda v: f"{v:.0%}"), "Share of reviewers' verdicts that confirmed "
            "the flag; each bar links to those conversations.", []))
    if len(trends) >= 2:
        for title, part, name_of, value_of, n_of, note in (
            ("Agreement per week (alpha)", "agreement", lambda r: category_words(r["category"]),
             lambda r: r["krippendorff_alpha"], lambda r: r["alpha_n"],
             "Weekly n are small: hover a point for its n."),
            ("Flag precision per week", "precision", lambda r: flag_kind_label(r["kind"]),
             lambda r: r["precision"], lambda r: r["n"], "Confirmed share of verdicts."),
            ("Automated vs human per week (Pearson r)", "correlation",
             lambda r: f"{score_label(r['auto']).capitalize()} vs "
                       f"{category_words(r['human']).lower()}",
             lambda r: r["pearson"],
             lambda r: r["n"], "Negative r is drawn at 0."),
        ):
            series = _weekly(trends, part, name_of, value_of, n_of)
            if series:
                legend = [(x.name, PALETTE[i % len(PALETTE)]) for i, x in enumerate(series)]
                view.charts.append((title, line_chart(title=title, series=series, y_max=1.0,
                                                      y_format=fig), note, legend))
    return view
