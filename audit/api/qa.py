"""The QA API (issue 7), for external QA tools: queues with their progress, "take next",
reviews (list, detail, create: draft or submit, with the pages' validation: a 400 names
each field). The blind rule and the roles are the pages' (audit.qa_selectors): reading
needs audit.annotate, a review shows only what its caller may see."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from audit.qa_models import QueueSlot, ReviewQueue
from audit.qa_queues import QueueError, queue_review_submit, slot_take_next
from audit.qa_selectors import (
    queues_progress,
    queues_visible,
    review_version_for,
    reviewers_progress_visible,
    reviews_visible,
)
from audit.roles import ANNOTATE
from conversations.models import Conversation
from scoring.models import Review, ReviewAnswer, ScorecardVersion
from scoring.qa import QAError, review_draft_save

from .filters import IdFilter, _PeriodFilterSet
from .pagination import KeysetPagination
from .permissions import CanViewAuditor, _Holds
from .views import AuditorAPI, documented


class CanAnnotate(_Holds):
    codename = ANNOTATE
    message = "Only QA reviewers and managers may use QA queues and reviews (audit.annotate)."


class _QA(AuditorAPI):
    permission_classes = [CanViewAuditor, CanAnnotate]


# --- serializers ---------------------------------------------------------------------------


class ProgressSerializer(serializers.Serializer):
    to_do = serializers.IntegerField(help_text="Slots no one has taken.")
    in_progress = serializers.IntegerField(help_text="Slots taken, review not submitted.")
    done = serializers.IntegerField()
    items = serializers.IntegerField(help_text="Conversations in the queue.")


class ReviewerProgressSerializer(serializers.Serializer):
    username = serializers.CharField()
    in_progress = serializers.IntegerField()
    done = serializers.IntegerField()


class QueueSerializer(serializers.ModelSerializer):
    scorecard = serializers.CharField(source="scorecard.key")
    reviewers = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = ReviewQueue
        fields = ["id", "name", "description", "scorecard", "active", "channel_percent",
                  "flag_kinds", "dropped_handoffs", "brand", "ai_model", "prompt_version",
                  "since", "until", "double_percent", "reviewers", "filled_at", "progress"]

    def get_reviewers(self, queue: ReviewQueue) -> list[str]:
        return [u.get_username() for u in queue.reviewers.all()]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, queue: ReviewQueue) -> dict[str, int]:
        return self.context["progress"][queue.pk].as_dict()


class QueueDetailSerializer(QueueSerializer):
    per_reviewer = serializers.SerializerMethodField()

    class Meta(QueueSerializer.Meta):
        fields = [*QueueSerializer.Meta.fields, "per_reviewer"]

    @extend_schema_field(ReviewerProgressSerializer(many=True))
    def get_per_reviewer(self, queue: ReviewQueue) -> list[dict[str, Any]]:
        return [{"username": p.username, "in_progress": p.in_progress, "done": p.done}
                for p in self.context["per_reviewer"]]


class SlotSerializer(serializers.ModelSerializer):
    conversation = serializers.IntegerField(source="item.conversation_id")
    double = serializers.BooleanField(source="item.double")
    reason = serializers.CharField(source="item.reason")
    reviewer = serializers.CharField(source="reviewer.username")

    class Meta:
        model = QueueSlot
        fields = ["id", "queue", "conversation", "number", "double", "reason", "reviewer",
                  "claimed_at"]


class TakeNextSerializer(serializers.Serializer):
    slot = SlotSerializer(allow_null=True, help_text="null: nothing left to take.")


class AnswerSerializer(serializers.ModelSerializer):
    category = serializers.CharField(source="category.key")
    scale = serializers.CharField(source="category.scale")

    class Meta:
        model = ReviewAnswer
        fields = ["category", "scale", "value", "na", "comment"]


class VerdictOutSerializer(serializers.Serializer):
    flag = serializers.IntegerField(source="flag_id")
    kind = serializers.CharField()
    verdict = serializers.CharField()
    comment = serializers.CharField()


class NoteOutSerializer(serializers.Serializer):
    message = serializers.IntegerField(source="message_id")
    label = serializers.CharField()
    comment = serializers.CharField()


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username")
    scorecard = serializers.CharField(source="version.scorecard.key")
    version = serializers.IntegerField(source="version.number")
    answers = AnswerSerializer(many=True)
    flag_verdicts = VerdictOutSerializer(many=True)
    message_notes = NoteOutSerializer(many=True)

    class Meta:
        model = Review
        fields = ["id", "conversation", "reviewer", "scorecard", "version", "status",
                  "score_100", "failed", "failed_categories", "comment", "answers",
                  "flag_verdicts", "message_notes", "created_at", "submitted_at"]


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "boolean"}, {"type": "string"},
                                {"type": "object", "properties": {
                                    "value": {}, "na": {"type": "boolean"},
                                    "comment": {"type": "string"}}}]})
class AnswerValue(serializers.JSONField):
    """yes/no: true/false, 1/0 or "yes"/"no"; 1-5: 1..5; or {"value", "na", "comment"}."""


class NoteInSerializer(serializers.Serializer):
    message_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    label = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    comment = serializers.CharField(required=False, allow_blank=True, default="",
                                    max_length=10000)


class VerdictInSerializer(serializers.Serializer):
    flag_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    verdict = serializers.ChoiceField(choices=["confirmed", "false_positive"])
    comment = serializers.CharField(required=False, allow_blank=True, default="",
                                    max_length=10000)


class ReviewInSerializer(serializers.Serializer):
    """A review to save as a draft (`submit: false`) or submit: the same validation as the
    page. `version` is the scorecard version's id; default: the scorecard of the reviewer's
    queue slot for this conversation (the version of their review under it, else its current
    version), else their latest review's version, else the default scorecard's current."""

    conversation = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    version = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    submit = serializers.BooleanField(default=True)
    answers = serializers.DictField(child=AnswerValue(), allow_empty=True)
    notes = NoteInSerializer(many=True, required=False, default=list)
    verdicts = VerdictInSerializer(many=True, required=False, default=list)
    comment = serializers.CharField(required=False, allow_blank=True, default="",
                                    max_length=10000)


# --- views ---------------------------------------------------------------------------------


class QueueList(_QA, generics.ListAPIView):
    """QA queues with their progress (slots to do, in progress, done): a lead sees every
    queue, a reviewer the queues they may take from (as the /qa/ page)."""

    serializer_class = QueueSerializer
    pagination_class = KeysetPagination
    ordering = ("name", "id")

    def get_queryset(self) -> QuerySet[ReviewQueue]:
        return queues_visible(user=self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        queues = list(self.get_queryset())
        return {**super().get_serializer_context(), "progress": queues_progress(queues=queues)}


class QueueDetail(_QA, generics.RetrieveAPIView):
    """One queue, with its progress per reviewer (a lead: everyone's; a reviewer: their
    own)."""

    serializer_class = QueueDetailSerializer

    def get_queryset(self) -> QuerySet[ReviewQueue]:
        return queues_visible(user=self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if "pk" not in self.kwargs:
            return context
        queue = get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])
        return {**context, "progress": queues_progress(queues=[queue]),
                "per_reviewer": reviewers_progress_visible(user=self.request.user,
                                                           queues=[queue])}


class QueueTakeNext(_QA, generics.GenericAPIView):
    """Take the next item for the caller: their own unfinished one first, else the oldest
    free slot (never both slots of a double review). `slot` is null when nothing is left."""

    queryset = ReviewQueue.objects.all()
    serializer_class = TakeNextSerializer

    @documented(request=None, responses=TakeNextSerializer)
    def post(self, request: Request, pk: int) -> Response:
        queue = self.get_object()
        try:
            slot = slot_take_next(queue=queue, reviewer=request.user)
        except QueueError as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response({"slot": SlotSerializer(slot).data if slot else None})


class ReviewFilter(_PeriodFilterSet):
    """`since`/`until` are on the conversation's start."""

    period_field = "conversation__started_at"
    conversation = IdFilter(field_name="conversation_id")
    reviewer = df.CharFilter(field_name="reviewer__username", max_length=150)
    status = df.ChoiceFilter(choices=Review.Status.choices)
    scorecard = df.CharFilter(field_name="version__scorecard__key", max_length=64)

    class Meta(_PeriodFilterSet.Meta):
        model = Review
        fields: list[str] = []


def _reviews() -> QuerySet[Review]:
    return (Review.objects.select_related("reviewer", "version__scorecard")
            .prefetch_related("answers__category", "flag_verdicts", "message_notes"))


class ReviewList(_QA, generics.ListAPIView):
    """Reviews the caller may see (blind: others' only once the caller's own review of the
    conversation is submitted; drafts only the caller's), newest first. POST saves a draft
    or submits."""

    serializer_class = ReviewSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ReviewFilter
    pagination_class = KeysetPagination
    ordering = ("-id",)

    def get_queryset(self) -> QuerySet[Review]:
        return reviews_visible(user=self.request.user, qs=_reviews())

    @documented(request=ReviewInSerializer, responses={200: ReviewSerializer,
                                                       201: ReviewSerializer})
    def post(self, request: Request) -> Response:
        data = ReviewInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        conversation = Conversation.objects.filter(pk=d["conversation"]).first()
        if conversation is None:
            raise ValidationError({"conversation": [f"No conversation {d['conversation']}."]})
        version = _version(request, conversation, d.get("version"))
        existed = Review.objects.filter(reviewer=request.user, conversation=conversation,
                                        version=version).exists()
        content = {"answers": d["answers"], "notes": d["notes"], "verdicts": d["verdicts"],
                   "comment": d["comment"]}
        try:
            if d["submit"]:
                review = queue_review_submit(reviewer=request.user, conversation=conversation,
                                             version=version, **content)
            else:
                review = review_draft_save(reviewer=request.user, conversation=conversation,
                                           version=version, **content)
        except QAError as exc:
            raise ValidationError(exc.message_dict) from exc
        return Response(ReviewSerializer(_reviews().get(pk=review.pk)).data,
                        status=200 if existed else 201)


def _version(request: Request, conversation: Conversation,
             version_id: int | None) -> ScorecardVersion:
    if version_id is not None:
        version = ScorecardVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise ValidationError({"version": [f"No scorecard version {version_id}."]})
        return version
    return review_version_for(user=request.user, conversation=conversation)


class ReviewDetail(_QA, generics.RetrieveAPIView):
    serializer_class = ReviewSerializer

    def get_queryset(self) -> QuerySet[Review]:
        return reviews_visible(user=self.request.user, qs=_reviews())


del OpenApiTypes
