"""Brand calibration through the API: upload the replies a brand likes and dislikes (20-100
examples; brand_fit learns from them), and fit the brand's dimension weights to its QA
reviewers' brand-tone answers. Reading needs the view permission; changing needs lead_qa
(managers). See scoring/calibration.py and docs/scoring.md."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from audit.roles import LEAD
from conversations.conf import auditor_settings
from conversations.models import Channel
from scoring.calibration import (
    MAX_EXAMPLES_PER_UPLOAD,
    CalibrationError,
    brand_examples_add,
    brand_fit_train,
    brand_qa_calibrate,
)
from scoring.models import BrandCalibration, BrandExample, BrandVoice

from .permissions import CanViewAuditor, _Holds
from .views import AuditorAPI, documented


class CanCalibrate(_Holds):
    codename = LEAD
    message = "Only QA leads and managers may calibrate a brand (audit.lead_qa)."


class _Writes(AuditorAPI):
    def get_permissions(self):  # noqa: ANN201
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [CanViewAuditor()]
        return [CanViewAuditor(), CanCalibrate()]


class BrandExampleSerializer(serializers.ModelSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices, required=False,
                                      allow_blank=True)
    text = serializers.CharField(max_length=5000, trim_whitespace=True)

    class Meta:
        model = BrandExample
        fields = ["id", "text", "liked", "channel", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_text(self, value: str) -> str:
        # What PostgreSQL cannot store: a NUL, or a lone surrogate from a JSON \u escape.
        if "\x00" in value:
            raise serializers.ValidationError("The text holds a NUL character.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise serializers.ValidationError("The text is not valid Unicode.") from exc
        return value


class CalibrationSerializer(serializers.ModelSerializer):
    examples = serializers.IntegerField(source="fit_examples", read_only=True)
    brand_fit_cv_auc = serializers.FloatField(source="fit_cv_auc", read_only=True,
                                              allow_null=True)
    brand_fit_trained_at = serializers.DateTimeField(source="fit_at", read_only=True,
                                                     allow_null=True)
    qa_weights = serializers.DictField(child=serializers.FloatField(), read_only=True)

    class Meta:
        model = BrandCalibration
        fields = ["examples", "brand_fit_cv_auc", "brand_fit_trained_at", "qa_weights",
                  "qa_conversations", "qa_r_before", "qa_r_after", "qa_at"]


class ExampleUploadSerializer(serializers.Serializer):
    examples = BrandExampleSerializer(many=True, allow_empty=False,
                                      max_length=MAX_EXAMPLES_PER_UPLOAD)
    train = serializers.BooleanField(
        default=True, help_text="Refit brand_fit on all the brand's examples afterwards.")


class UploadResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    examples = serializers.IntegerField(help_text="The brand's examples now.")
    calibration = CalibrationSerializer(allow_null=True)
    not_trained = serializers.CharField(allow_null=True,
                                        help_text="Why brand_fit was not (re)fitted.")


def _brand(pk: int | str) -> BrandVoice:
    pk = int(pk)
    if not 0 < pk < 2**63:
        raise NotFound("No brand voice has this id.")
    return get_object_or_404(BrandVoice, pk=pk)


class BrandExampleList(_Writes, generics.GenericAPIView):
    """GET: the brand's liked and disliked example replies. POST: add up to 100 (a text
    the brand already has is updated), then refit brand_fit (20 examples at least, 5 of
    each kind); 400 with the reason for anything else."""

    serializer_class = BrandExampleSerializer
    queryset = BrandExample.objects.none()
    pagination_class = None

    @documented(responses=BrandExampleSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        brand = _brand(pk)
        return Response(BrandExampleSerializer(brand.examples.all(), many=True).data)

    @documented(request=ExampleUploadSerializer, responses={201: UploadResultSerializer})
    def post(self, request: Request, pk: int) -> Response:
        brand = _brand(pk)
        upload = ExampleUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        try:
            added = brand_examples_add(brand=brand,
                                       examples=upload.validated_data["examples"])
        except CalibrationError as exc:
            raise ValidationError({"examples": [str(exc)]}) from exc
        calibration, reason = None, None
        if upload.validated_data["train"]:
            try:
                calibration = brand_fit_train(brand=brand)
            except CalibrationError as exc:
                reason = str(exc)
        return Response(UploadResultSerializer({
            "added": len(added), "examples": brand.examples.count(),
            "calibration": calibration, "not_trained": reason,
        }).data, status=201)


class BrandCalibrationView(_Writes, generics.GenericAPIView):
    """GET: what was learned for the brand (brand_fit's cross-validated AUC; the QA
    weights with r before and after). POST: fit the weights to the reviewers' brand-tone
    answers now (10 reviewed conversations at least; 400 with the reason otherwise).
    Messages keep their scores until rescored (`manage.py rescore --brand NAME`)."""

    serializer_class = CalibrationSerializer
    queryset = BrandCalibration.objects.none()

    @documented(responses=CalibrationSerializer)
    def get(self, request: Request, pk: int) -> Response:
        calibration = get_object_or_404(BrandCalibration, brand=_brand(pk))
        return Response(CalibrationSerializer(calibration).data)

    @documented(request=None, responses=CalibrationSerializer)
    def post(self, request: Request, pk: int) -> Response:
        brand = _brand(pk)
        try:
            calibration = brand_qa_calibrate(
                brand=brand, default_weights=auditor_settings.SCORING_WEIGHTS)
        except CalibrationError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(CalibrationSerializer(calibration).data)
