"""The report pages (issue 17) and their CSV: thin views over audit.selectors_outcomes
(figures), audit.outcome_views (what the pages show) and audit.qa_results (QA)."""

from collections.abc import Iterator
from datetime import date
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from conversations.models import Channel

from .dashboard_selectors import PERIODS, Period, dashboard_period
from .export import CsvLines
from .outcome_export import comparison_dict, figures_dict, flat_rows, report_dict
from .outcome_rules import repeat_days
from .outcome_views import (
    GROUP_LABELS,
    compare_table,
    group_rows,
    report_view,
    side_link,
    table_sort,
    worst_tables,
)
from .qa_results import qa_results
from .qa_results_view import qa_view
from .roles import EXPORT, VIEW
from .selectors_outcomes import (
    GROUP_KINDS,
    Side,
    before_after,
    outcome_compare,
    outcome_groups,
    outcome_report,
    release_keys,
)
from .views import _viewer, requires


class PeriodForm(forms.Form):
    days = forms.TypedChoiceField(required=False, coerce=int, empty_value=30,
                                  choices=[(str(d), f"Last {d} days") for d in PERIODS])
    channel = forms.ChoiceField(required=False, choices=[("", "All channels"), *Channel.choices])

    def period(self) -> Period:
        data = self.cleaned_data if self.is_valid() else {}
        return dashboard_period(days=data.get("days") or 30, channel=data.get("channel") or "")


def _pickers(period: Period, **kept: str) -> dict[str, Any]:
    keep = {k: v for k, v in kept.items() if v}
    channel = {"channel": period.channel} if period.channel else {}
    return {
        "period_urls": [(d, f"?{urlencode({**keep, **channel, 'days': d})}") for d in PERIODS],
        "channel_urls": [("", "All", f"?{urlencode({**keep, 'days': period.days})}")] + [
            (value, label, f"?{urlencode({**keep, 'days': period.days, 'channel': value})}")
            for value, label in Channel.choices],
    }


def _csv_url(request: HttpRequest, report: str) -> str:
    return f"{reverse('audit:report_csv')}?{urlencode({**request.GET.dict(), 'report': report})}"


def _tabs(current: str) -> list[tuple[str, str, bool]]:
    tabs = [("Outcomes", reverse("audit:reports"), current == "outcomes")]
    tabs += [(f"Per {GROUP_LABELS[k] if k == 'model' else GROUP_LABELS[k].lower()}",
              reverse("audit:report_groups", args=[k]),
              current == k) for k in GROUP_KINDS]
    tabs += [("Compare releases", reverse("audit:report_compare"), current == "compare"),
             ("QA results", reverse("audit:report_qa"), current == "qa")]
    return tabs


@require_GET
@requires(VIEW)
def outcomes(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET)
    period = form.period()
    report = outcome_report(period=period)
    return render(request, "audit/reports.html", {
        "form": form, "period": period, "view": report_view(report), "tabs": _tabs("outcomes"),
        "repeat_days": repeat_days(),
        "csv": _csv_url(request, "outcomes"),
        **_pickers(period), **_viewer(request),
    }, status=200 if form.is_valid() else 400)


class GroupForm(PeriodForm):
    sort = forms.CharField(required=False, max_length=32)
    desc = forms.ChoiceField(required=False, choices=[("", "descending"), ("0", "ascending")])


@require_GET
@requires(VIEW)
def groups(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in GROUP_KINDS:
        return render(request, "audit/forbidden.html",
                      {"message": f"There is no report per {kind}."}, status=404)
    form = GroupForm(request.GET)
    period = form.period()
    data = form.cleaned_data if form.is_valid() else {}
    table = group_rows(period, kind, outcome_groups(period=period, kind=kind))
    sort = data.get("sort") or "conversations"
    descending = data.get("desc") != "0"
    table_sort(table, sort, descending)
    kept = {"days": str(period.days), "channel": period.channel}
    # A second click on the sorted column turns the order around.
    sort_urls = [f"?{urlencode({**kept, 'sort': key, 'desc': '0' if key == sort and descending else ''})}"  # noqa: E501
                 for key in table.sort_keys]
    return render(request, "audit/reports_groups.html", {
        "form": form, "period": period, "table": table, "kind": kind,
        "heading": f"Per {GROUP_LABELS[kind] if kind == 'model' else GROUP_LABELS[kind].lower()}",
        "label": GROUP_LABELS[kind], "tabs": _tabs(kind), "sort": sort,
        "descending": descending, "head": list(zip(table.head, sort_urls, table.sort_keys,
                                                   strict=True)),
        "csv": f"{reverse('audit:report_csv')}?{urlencode({**kept, 'report': kind})}",
        **_pickers(period, sort=sort), **_viewer(request),
    }, status=200 if form.is_valid() else 400)


class CompareForm(PeriodForm):
    mode = forms.ChoiceField(required=False, choices=[("release", "Two releases"),
                                                      ("date", "Before / after a date")])
    kind = forms.ChoiceField(required=False, choices=[("model", "AI model"),
                                                      ("prompt", "Prompt version")])
    a = forms.CharField(required=False, max_length=255, label="Release A")
    b = forms.CharField(required=False, max_length=255, label="Release B")
    split = forms.DateField(required=False, label="Split date",
                            widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("mode") == "date" and data.get("split"):
            period = self.period_of(data)
            if not period.first < data["split"] <= period.last:
                self.add_error("split", "pick a day inside the period, after its first day")
        return data

    @staticmethod
    def period_of(data: dict[str, Any]) -> Period:
        return dashboard_period(days=data.get("days") or 30, channel=data.get("channel") or "")


def compare_sides(data: dict[str, Any], period: Period,
                  keys: dict[str, list[str]]) -> tuple[Side, Side] | None:
    if data.get("mode") == "date":
        split: date | None = data.get("split")
        return before_after(period=period, split=split) if split else None
    kind = data.get("kind") or "model"
    options = keys.get(kind, [])
    a = data.get("a") or (options[0] if options else "")
    b = data.get("b") or (options[1] if len(options) > 1 else "")
    if not a or not b:
        return None
    return Side(kind, a, period), Side(kind, b, period)


@require_GET
@requires(VIEW)
def compare(request: HttpRequest) -> HttpResponse:
    form = CompareForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    period = CompareForm.period_of(data)
    keys = release_keys(period=period)
    sides = compare_sides(data, period, keys)
    context: dict[str, Any] = {"form": form, "period": period, "keys": keys,
                               "tabs": _tabs("compare"), "sides": sides,
                               "mode": data.get("mode") or "release",
                               "kind": data.get("kind") or "model"}
    if sides:
        a, b = sides
        fa, fb, rows = outcome_compare(a=a, b=b)
        replay = lambda pk: reverse("audit:replay", args=[pk])  # noqa: E731
        context.update(
            a=a, b=b, table=compare_table(a, b, rows), fa=fa, fb=fb,
            a_link=side_link(a), b_link=side_link(b),
            worst=list(zip(worst_tables(a.period, fa, replay, f"{a.label}: "),
                           worst_tables(b.period, fb, replay, f"{b.label}: "), strict=True)),
            csv=_csv_url(request, "compare"),
        )
    return render(request, "audit/reports_compare.html", {**context, **_viewer(request)},
                  status=200 if valid else 400)


@require_GET
@requires(VIEW)
def qa(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET)
    period = form.period()
    results = qa_results(period=period)
    return render(request, "audit/reports_qa.html", {
        "form": form, "period": period, "view": qa_view(results), "tabs": _tabs("qa"),
        "results": results,
        "csv": _csv_url(request, "qa"),
        **_pickers(period), **_viewer(request),
    }, status=200 if form.is_valid() else 400)


class CsvForm(CompareForm):
    report = forms.ChoiceField(required=False, choices=[
        ("outcomes", "outcomes"), *[(k, k) for k in GROUP_KINDS], ("compare", "compare"),
        ("qa", "qa")])


HEADER = ("report", "period_first", "period_last", "channel", "group", "key", "figure",
          "value")


@require_GET
@requires(EXPORT)
def report_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Every figure of a report in long format: one line per (group, figure)."""
    form = CsvForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"detail": "invalid parameters", "errors": form.errors},
                            status=400)
    data = form.cleaned_data
    period = CompareForm.period_of(data)
    report = data.get("report") or "outcomes"
    lines = CsvLines()

    def rows() -> Iterator[str]:
        yield lines.row(HEADER)
        common = (report, period.first.isoformat(), period.last.isoformat(), period.channel)
        for group, figures in _csv_groups(report, data, period):
            for row in flat_rows((*common, group, figures.get("key", "")),
                                 {k: v for k, v in figures.items() if k != "key"}):
                yield lines.row(row)

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="report-{report}-{stamp}.csv"'
    return response


def _csv_groups(report: str, data: dict[str, Any], period: Period
                ) -> Iterator[tuple[str, dict[str, Any]]]:
    if report == "outcomes":
        r = report_dict(outcome_report(period=period))
        yield "total", r["total"]
        for name in ("by_channel", "by_handoff_outcome", "by_day"):
            for figures in r[name]:
                yield name.removeprefix("by_"), figures
        for name, items in r["worst"].items():
            for n, item in enumerate(items, 1):
                yield f"worst_{name}", {"key": str(n), "conversation": item["conversation"],
                                        "value": item["value"]}
    elif report in GROUP_KINDS:
        for g in outcome_groups(period=period, kind=report):
            yield report, figures_dict(g)
    elif report == "compare":
        sides = compare_sides(data, period, release_keys(period=period))
        if sides:
            for c in outcome_compare(a=sides[0], b=sides[1])[2]:
                row = comparison_dict(c)
                yield f"{sides[0].label} vs {sides[1].label}", {"key": row.pop("figure"), **{
                    k: v for k, v in row.items() if k not in ("a", "b")},
                    **{f"a_{k}": v for k, v in row["a"].items()},
                    **{f"b_{k}": v for k, v in row["b"].items()}}
    elif report == "qa":
        for group, figures in qa_results(period=period).as_rows():
            yield group, figures
