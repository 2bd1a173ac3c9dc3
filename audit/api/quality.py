"""GET /api/metrics/quality/: answer-quality rates by channel, AI model and prompt version
(audit.quality_figures, from the daily rollup)."""

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.quality_figures import QUALITY_KIND_VALUES, quality_dict, quality_figures

from .reports import PeriodQuery, _query
from .views import AuditorAPI, documented


class KindRateSerializer(serializers.Serializer):
    flagged = serializers.IntegerField(help_text="Conversations with a flag of this kind.")
    rate = serializers.FloatField(allow_null=True,
                                  help_text="flagged / conversations, 0-1 (null: none).")


class QualityGroupSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The channel, AI model or prompt version.")
    conversations = serializers.IntegerField(
        help_text="Conversations started in the period in which the AI (or this release) "
                  "took part: the denominator.")
    kinds = serializers.DictField(
        child=KindRateSerializer(),
        help_text="Per answer-quality flag kind: " + ", ".join(QUALITY_KIND_VALUES) + ".")


class QualityMetricsSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField(help_text="Inclusive.")
    channel = serializers.CharField(allow_null=True)
    by_channel = QualityGroupSerializer(many=True)
    by_model = QualityGroupSerializer(many=True)
    by_prompt = QualityGroupSerializer(many=True)


class QualityMetricsView(AuditorAPI, APIView):
    """Answer-quality flag rates for conversations started in the period (default: the
    last 30 days), per channel, AI model and prompt version: for each kind, the
    conversations flagged with it over the conversations the AI (or the release) took part
    in. Read from the daily rollups (docs/answer-quality.md, Rates)."""

    @documented(parameters=[PeriodQuery], responses=QualityMetricsSerializer)
    def get(self, request: Request) -> Response:
        period = _query(PeriodQuery, request).period()
        return Response(QualityMetricsSerializer(
            quality_dict(quality_figures(period=period, links=False))).data)
