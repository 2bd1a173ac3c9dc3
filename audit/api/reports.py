"""The report endpoints (issue 17): every figure of the report pages, with the n behind
each, read from the same selectors (audit.selectors_outcomes, audit.qa_results)."""

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.dashboard_selectors import Period
from audit.outcome_export import comparison_dict, figures_dict, report_dict
from audit.qa_results import PassFigures, qa_results
from audit.selectors_outcomes import (
    GROUP_KINDS,
    WORST,
    Side,
    before_after,
    outcome_compare,
    outcome_groups,
    outcome_report,
)
from conversations.models import Channel

from . import filters
from .views import AuditorAPI, documented

MAX_DAYS = 366  # a period's length: a year of daily rollups at most


class PeriodQuery(serializers.Serializer):
    since = serializers.DateField(required=False, validators=[filters.day_in_range],
                                  help_text="First day a conversation started (default: 29 "
                                  "days before until).")
    until = serializers.DateField(required=False, validators=[filters.day_in_range],
                                  help_text="Last day, inclusive (default: today).")
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("until", timezone.localdate())
        data.setdefault("since", max(filters.FIRST_DAY, data["until"] - timedelta(days=29)))
        if data["since"] > data["until"]:
            raise ValidationError({"until": ["must not be before since"]})
        if (data["until"] - data["since"]).days >= MAX_DAYS:
            raise ValidationError({"since": [f"a period is at most {MAX_DAYS} days"]})
        return data

    def period(self) -> Period:
        q = self.validated_data
        return Period(days=(q["until"] - q["since"]).days + 1, first=q["since"],
                      last=q["until"], channel=q.get("channel") or "")


def _query(cls: type[PeriodQuery], request: Request) -> PeriodQuery:
    query = cls(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query


class DistributionSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    p50 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    n = serializers.IntegerField(help_text="The denominator.")
    rate = serializers.FloatField(allow_null=True, help_text="count / n, 0-1")


class FiguresSerializer(serializers.Serializer):
    """audit.outcome_export.figures_dict: one group's figures (docs/reports.md)."""

    key = serializers.CharField()
    label = serializers.CharField(allow_blank=True)
    conversations = serializers.IntegerField()
    first_response_seconds = DistributionSerializer()
    first_human_seconds = DistributionSerializer()
    resolution_seconds = DistributionSerializer()
    time_to_human_seconds = DistributionSerializer()
    resolved = CountSerializer()
    contained = CountSerializer()
    escalated = CountSerializer()
    repeat_contact = CountSerializer()
    converted = CountSerializer()
    csat = serializers.DictField(help_text='{"mean": 1-5 or null, "n": rated}')
    nps = serializers.DictField(
        help_text='{"score": -100..100 or null, "n", "promoters", "detractors"}')
    revenue = serializers.DictField(child=serializers.CharField(),
                                    help_text="Decimal sums per ISO 4217 currency.")
    ai_cost = serializers.DictField(help_text='{"total", "n", "per_conversation"} (decimals)')
    customer_warmth = serializers.DictField(help_text='{"start", "end" (0-1 or null), "n"}')
    handoffs = serializers.DictField(child=serializers.IntegerField())
    sla_met = CountSerializer()
    qa = serializers.DictField(help_text='{"score" 0-100, "n", "failed", "pass_rate"}')


class WorstSerializer(serializers.Serializer):
    conversation = serializers.IntegerField()
    value = serializers.FloatField()


class PeriodSerializer(serializers.Serializer):
    first = serializers.DateField()
    last = serializers.DateField()
    channel = serializers.CharField(allow_blank=True)


class OutcomeReportSerializer(serializers.Serializer):
    period = PeriodSerializer()
    total = FiguresSerializer()
    by_channel = FiguresSerializer(many=True)
    by_handoff_outcome = FiguresSerializer(many=True)
    by_day = FiguresSerializer(many=True)
    worst = serializers.DictField(child=WorstSerializer(many=True),
                                  help_text=f"Ten each: {', '.join(WORST)}.")


class OutcomeReportView(AuditorAPI, APIView):
    """Customer outcomes of the conversations started in the period: first response (any
    responder, first human), resolution, containment, escalation, repeat contact, CSAT,
    NPS, conversion and revenue per currency, customer warmth start vs end; in total, per
    channel, per handoff outcome and per day; the worst cases. From the daily rollups."""

    @documented(parameters=[PeriodQuery], responses=OutcomeReportSerializer)
    def get(self, request: Request) -> Response:
        period = _query(PeriodQuery, request).period()
        return Response(report_dict(outcome_report(period=period)))


class GroupQuery(PeriodQuery):
    kind = serializers.ChoiceField(choices=GROUP_KINDS)


class GroupsSerializer(serializers.Serializer):
    period = PeriodSerializer()
    kind = serializers.CharField()
    groups = FiguresSerializer(many=True)


class OutcomeGroupsView(AuditorAPI, APIView):
    """The same figures per agent, queue, team, AI model or prompt version, most
    conversations first (with handoffs taken, time to first reply, SLA met, stalled,
    dropped and the QA score)."""

    @documented(parameters=[GroupQuery], responses=GroupsSerializer)
    def get(self, request: Request) -> Response:
        query = _query(GroupQuery, request)
        period, kind = query.period(), query.validated_data["kind"]
        return Response({"period": _period(period), "kind": kind,
                         "groups": [figures_dict(g) for g in outcome_groups(period=period,
                                                                             kind=kind)]})


def _period(period: Period) -> dict[str, Any]:
    return {"first": period.first.isoformat(), "last": period.last.isoformat(),
            "channel": period.channel}


class CompareQuery(PeriodQuery):
    kind = serializers.ChoiceField(choices=["model", "prompt"], required=False,
                                   help_text="What a and b are (default model).")
    a = serializers.CharField(required=False, max_length=255)
    b = serializers.CharField(required=False, max_length=255)
    split = serializers.DateField(required=False, validators=[filters.day_in_range],
                                  help_text="Instead of a and b: before vs from this day on.")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data = super().validate(data)
        if data.get("split"):
            if not data["since"] < data["split"] <= data["until"]:
                raise ValidationError({"split": ["must fall inside the period, after since"]})
        elif not (data.get("a") and data.get("b")):
            raise ValidationError({"a": ["give a and b, or split"]})
        return data


class EstimateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="95% confidence interval")
    high = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()


class ComparisonSerializer(serializers.Serializer):
    figure = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.ChoiceField(choices=["rate", "mean", "nps", "time"])
    a = EstimateSerializer()
    b = EstimateSerializer()
    difference = serializers.FloatField(allow_null=True, help_text="b - a")
    p_value = serializers.FloatField(allow_null=True)
    significant = serializers.BooleanField(help_text="p < 0.05")
    test = serializers.CharField()


class CompareSerializer(serializers.Serializer):
    a = serializers.CharField(help_text="What side a is.")
    b = serializers.CharField()
    figures_a = FiguresSerializer()
    figures_b = FiguresSerializer()
    comparisons = ComparisonSerializer(many=True)


class OutcomeCompareView(AuditorAPI, APIView):
    """Two AI models or prompt versions (or before / after a day) side by side: every
    figure with a 95% interval and a two-sided test (docs/reports.md)."""

    @documented(parameters=[CompareQuery], responses=CompareSerializer)
    def get(self, request: Request) -> Response:
        query = _query(CompareQuery, request)
        q, period = query.validated_data, query.period()
        if q.get("split"):
            a, b = before_after(period=period, split=q["split"])
        else:
            kind = q.get("kind") or "model"
            a, b = Side(kind, q["a"], period), Side(kind, q["b"], period)
        fa, fb, rows = outcome_compare(a=a, b=b)
        return Response({"a": a.label, "b": b.label, "figures_a": figures_dict(fa),
                         "figures_b": figures_dict(fb),
                         "comparisons": [comparison_dict(c) for c in rows]})


class PassSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField(allow_blank=True)
    n = serializers.IntegerField(help_text="Reviews (answers, for categories).")
    failed = serializers.IntegerField()
    pass_rate = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True,
                                  help_text="Reviews: 0-100; categories: 0-1.")
    critical = serializers.BooleanField()


class GapSerializer(serializers.Serializer):
    auto = serializers.CharField()
    human = serializers.CharField()
    n = serializers.IntegerField()
    auto_mean = serializers.FloatField(allow_null=True)
    human_mean = serializers.FloatField(allow_null=True)
    gap = serializers.FloatField(allow_null=True)


class CriticalSerializer(serializers.Serializer):
    conversation = serializers.IntegerField()
    review = serializers.IntegerField()
    category = serializers.CharField()
    label = serializers.CharField()
    value = serializers.IntegerField()


class QAResultsSerializer(serializers.Serializer):
    period = PeriodSerializer()
    reviews = PassSerializer()
    scorecards = PassSerializer(many=True)
    categories = PassSerializer(many=True)
    weakest = PassSerializer(many=True)
    groups = serializers.DictField(child=PassSerializer(many=True),
                                   help_text="agent, channel, model, prompt")
    critical_failures = CriticalSerializer(many=True)
    weeks = PassSerializer(many=True)
    auto_vs_human = GapSerializer(many=True)


def _pass(f: PassFigures) -> dict[str, Any]:
    return {"key": f.key, "label": f.label, "n": f.n, "failed": f.failed,
            "pass_rate": f.pass_rate, "mean": f.mean, "critical": f.critical}


class QAResultsView(AuditorAPI, APIView):
    """QA results of the conversations started in the period: pass rates per scorecard and
    category, the weakest categories, per agent / channel / model / prompt version,
    critical-category failures, per week, and automated scores vs reviewers."""

    @documented(parameters=[PeriodQuery], responses=QAResultsSerializer)
    def get(self, request: Request) -> Response:
        r = qa_results(period=_query(PeriodQuery, request).period())
        return Response({
            "period": _period(r.period), "reviews": _pass(r.reviews),
            "scorecards": [_pass(f) for f in r.scorecards],
            "categories": [_pass(f) for f in r.categories],
            "weakest": [_pass(f) for f in r.weakest],
            "groups": {k: [_pass(f) for f in v] for k, v in r.groups.items()},
            "critical_failures": r.critical_failures,
            "weeks": [_pass(f) for f in r.weeks], "auto_vs_human": r.gap,
        })
