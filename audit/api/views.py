"""The API views: thin, over audit.selectors (inbox), audit.replay_selectors,
handoffs.selectors and conversations.services.

Every view: token auth (then session auth, for the browsable API), the auditor's view
permission, JSON errors. Query counts do not grow with the page size: one query for a page
and one per kind of detail."""

import functools
from datetime import timedelta
from typing import Any

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.contrib.staticfiles import finders
from django.db import InterfaceError, OperationalError
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
    _get_sidecar_url,
)
from rest_framework import generics, serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.access_log import pii_viewed
from audit.masking import response_mask
from audit.qa_selectors import scores_visible
from audit.replay_selectors import conversation_replay
from audit.triage import TriageError, flag_trails, triage_apply
from conversations.models import (
    AuthorKind,
    Conversation,
    DeliveryStatus,
    Flag,
    Message,
    MessageStatusEvent,
)
from conversations.services import flag_set_status
from handoffs.models import Handoff, HandoffTransition, Wait
from handoffs.selectors import GROUPS, handoff_metrics
from scoring.models import Score

from . import filters
from . import serializers as s
from .pagination import InboxPagination, KeysetPagination
from .permissions import CanActOnFlags, CanViewAuditor, DocsAccess, sees_pii

_ERROR = inline_serializer("Error", {"detail": serializers.CharField()})
_ERRORS = {
    "400": OpenApiResponse(OpenApiTypes.OBJECT,
                           description="Bad input: each field named with its reasons."),
    "401": OpenApiResponse(_ERROR, description="Not signed in: send `Authorization: Token …`."),
    "403": OpenApiResponse(_ERROR, description="The role does not allow this."),
    "404": OpenApiResponse(_ERROR, description="No such object."),
}


class ApiSchema(AutoSchema):
    """Every operation documents the JSON errors it can answer with."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        bodies = super()._get_response_bodies(direction)
        for code, response in _ERRORS.items():
            if code == "404" and "{" not in self.path:
                continue
            bodies.setdefault(code, self._get_response_for_code(response, code,
                                                                direction=direction))
        return bodies


def documented(**kwargs: Any) -> Any:
    """extend_schema for a view method, based on ApiSchema rather than the host's
    DEFAULT_SCHEMA_CLASS (which may be DRF's own, not drf-spectacular's)."""

    def decorate(method: Any) -> Any:
        method.schema = ApiSchema
        return extend_schema(**kwargs)(method)

    return decorate


UNAVAILABLE = "The database is unavailable; try again shortly."
RETRY_AFTER_SECONDS = "30"


class AuditorAPI:
    """What every endpoint shares: auth, the view permission, the schema, masking context."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [CanViewAuditor]
    schema = ApiSchema()

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "pii": sees_pii(self.request),
                "viewer": self.request.user}

    def handle_exception(self, exc: Exception) -> Response:
        # The database unreachable or timing out (down, restarting, a lock held too long)
        # is not the caller's fault nor a bug: 503 JSON, try again later.
        if isinstance(exc, (OperationalError, InterfaceError)):
            return Response({"detail": UNAVAILABLE}, status=503,
                            headers={"Retry-After": RETRY_AFTER_SECONDS})
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Any, *args: Any,
                          **kwargs: Any) -> Any:
        # The masking gate (audit.masking): every answer, errors included, for a caller
        # who may not see PII. The 503 says nothing about data (and who the caller is
        # cannot be known without the database).
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code == 503 or sees_pii(request):
            return response
        return response_mask(response)


class _List(AuditorAPI, generics.ListAPIView):
    filter_backends = [DjangoFilterBackend]
    pagination_class = KeysetPagination


# --- conversations ---------------------------------------------------------------------------


class ConversationList(_List):
    """The inbox: conversations with their latest handoff, open SLA wait and open flags,
    filtered like the inbox page, most recent (or most severe) first."""

    queryset = Conversation.objects.all()
    serializer_class = s.ConversationRowSerializer
    filterset_class = filters.ConversationFilter
    pagination_class = InboxPagination

    def get(self, request: Request) -> Response:
        filterset = self.filterset_class(request.query_params, queryset=self.get_queryset())
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginator.paginate(request, filters=filterset.inbox_filters(),
                                       sort=filterset.sort())
        data = self.get_serializer(page.rows, many=True).data
        return self.paginator.get_paginated_response(data)


class ConversationDetail(AuditorAPI, generics.GenericAPIView):
    """One conversation's whole journey in time order: messages with their delivery
    history, AI steps, events, handoff transitions, outcomes and flags; its handoffs with
    their SLA waits. A constant number of queries whatever its length."""

    queryset = Conversation.objects.all()
    serializer_class = s.ConversationDetailSerializer

    def get(self, request: Request, pk: int) -> Response:
        replay = conversation_replay(conversation=self.get_object())
        context = self.get_serializer_context()
        context["trails"] = flag_trails(  # one query for every flag's trail
            user=request.user, flags=[i.obj for i in replay.items if i.kind == "flag"])
        data = self.get_serializer(replay, context=context).data
        pii_viewed(request=request, what="API conversation", conversation_ids=[pk])
        return Response(data)


# --- messages, handoffs, flags -----------------------------------------------------------------


class MessageList(_List):
    """Messages with their delivery status history, newest first."""

    queryset = Message.objects.select_related("participant").prefetch_related(
        Prefetch("status_events", queryset=MessageStatusEvent.objects.order_by("occurred_at",
                                                                                 "id"),
                 to_attr="status_list"))
    serializer_class = s.MessageSerializer
    filterset_class = filters.MessageFilter
    ordering = ("-sent_at", "-id")

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("many") and args:  # the page's conversations join the access log
            rows = list(args[0])
            pii_viewed(request=self.request, what="API messages",
                       conversation_ids=sorted({m.conversation_id for m in rows}))
            args = (rows, *args[1:])
        return super().get_serializer(*args, **kwargs)


def _handoffs() -> QuerySet[Handoff]:
    return Handoff.objects.prefetch_related(
        Prefetch("waits", queryset=Wait.objects.order_by("started_at", "id"),
                 to_attr="wait_list"),
        Prefetch("transitions",
                 queryset=HandoffTransition.objects.order_by("occurred_at", "id"),
                 to_attr="transition_list"),
    )


class HandoffList(_List):
    """Handoffs with their SLA waits and whole transition log, newest request first."""

    queryset = _handoffs()
    serializer_class = s.HandoffWithTransitionsSerializer
    filterset_class = filters.HandoffFilter
    ordering = ("-requested_at", "-id")


class HandoffDetail(AuditorAPI, generics.RetrieveAPIView):
    queryset = _handoffs()
    serializer_class = s.HandoffWithTransitionsSerializer


class FlagList(_List):
    """Flags, newest first, each with its triage trail (filter `owner=me` for yours)."""

    queryset = Flag.objects.select_related("owner")
    serializer_class = s.FlagSerializer
    filterset_class = filters.FlagFilter
    ordering = ("-raised_at", "-id")

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("many") and args:  # one query for the page's trails
            rows = list(args[0])
            context = kwargs.setdefault("context", self.get_serializer_context())
            context["trails"] = flag_trails(user=self.request.user, flags=rows)
            args = (rows, *args[1:])
        return super().get_serializer(*args, **kwargs)


class FlagDetail(AuditorAPI, generics.RetrieveAPIView):
    queryset = Flag.objects.select_related("owner")
    serializer_class = s.FlagSerializer


class FlagTriage(AuditorAPI, generics.GenericAPIView):
    """Triage a flag: status, a note, owner, due date, ticket link, in one request. Managers
    only (audit.act_on_flags); each change joins the flag's trail with who and when, and
    nothing in the trail is ever overwritten."""

    queryset = Flag.objects.select_related("owner")
    serializer_class = s.FlagTriageSerializer
    permission_classes = [CanViewAuditor, CanActOnFlags]

    @documented(request=s.FlagTriageSerializer, responses=s.FlagSerializer)
    def post(self, request: Request, pk: int) -> Response:
        flag = self.get_object()
        action = self.get_serializer(data=request.data)
        action.is_valid(raise_exception=True)
        try:
            flag = triage_apply(flag=flag, by=request.user, data=action.validated_data)
        except TriageError as exc:
            raise ValidationError({"owner": [str(exc)]}) from exc
        return Response(s.FlagSerializer(flag, context=self.get_serializer_context()).data)


class FlagStatus(AuditorAPI, generics.GenericAPIView):
    """Acknowledge, resolve, mark as false positive or reopen a flag, with a note. Managers
    only (audit.act_on_flags); recorded with who and when."""

    queryset = Flag.objects.all()
    serializer_class = s.FlagStatusSerializer
    permission_classes = [CanViewAuditor, CanActOnFlags]

    @documented(request=s.FlagStatusSerializer, responses=s.FlagSerializer)
    def post(self, request: Request, pk: int) -> Response:
        flag = self.get_object()
        action = self.get_serializer(data=request.data)
        action.is_valid(raise_exception=True)
        flag = flag_set_status(flag=flag, status=action.validated_data["status"],
                               by=request.user.get_username(),
                               note=action.validated_data["note"])
        return Response(s.FlagSerializer(flag, context=self.get_serializer_context()).data)


class ScoreList(_List):
    """Scores (tone dimensions, checks, reviewers' scorecard answers), newest first."""

    serializer_class = s.ScoreSerializer
    filterset_class = filters.ScoreFilter
    ordering = ("-occurred_at", "-id")

    def get_queryset(self) -> QuerySet[Score]:
        # Blind double review: other reviewers' answers only after the caller's own.
        return scores_visible(user=self.request.user, qs=Score.objects.all())


# --- metrics ---------------------------------------------------------------------------------


class MetricsQuery(serializers.Serializer):
    since = serializers.DateField(required=False, validators=[filters.day_in_range],
                                  help_text="First day (default: 30 days before until).")
    until = serializers.DateField(required=False, validators=[filters.day_in_range],
                                  help_text="Last day, inclusive (default: today).")
    group_by = serializers.ChoiceField(choices=GROUPS, required=False)
    channel = serializers.ChoiceField(choices=Conversation._meta.get_field("channel").choices,
                                      required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("until", timezone.localdate())
        data.setdefault("since", max(filters.FIRST_DAY, data["until"] - timedelta(days=29)))
        try:
            filters.period_check(data["since"], data["until"])
        except Exception as exc:
            raise ValidationError({"until": ["must not be before since"]}) from exc
        return data


class HandoffMetricsView(AuditorAPI, APIView):
    """Handoff figures for handoffs requested in the period (handoffs.selectors), overall
    or per channel, queue, agent or day: handoff, dropped and returned rates, time to human
    p50/p90 (wall clock and business time), SLA met per waiting state, stalled."""

    @documented(parameters=[MetricsQuery], responses=s.MetricsSerializer)
    def get(self, request: Request) -> Response:
        query = MetricsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        rows = handoff_metrics(
            since=filters.day_start(q["since"]),
            until=filters.day_start(q["until"] + timedelta(days=1)),
            group_by=q.get("group_by"), channel=q.get("channel"),
        )
        out = {"since": q["since"], "until": q["until"], "group_by": q.get("group_by"),
               "channel": q.get("channel"), "rows": rows}
        return Response(s.MetricsSerializer(out).data)


# --- schema and docs (assets from drf-spectacular-sidecar: no CDN) -----------------------------

SCHEMA_SETTINGS = {
    "TITLE": "Handoff Auditor API",
    "DESCRIPTION": (
        "How AI support agents hand conversations to humans: conversations with their whole "
        "journey, messages, handoffs with transitions and SLA waits, flags (managers change "
        "their status) and handoff metrics; QA queues (take the next item) and reviews (blind "
        "double review: another reviewer's answers only once yours is submitted). "
        "Authenticate with `Authorization: Token <key>` "
        "(`manage.py issue_api_token <username>`). Customer addresses and PII in texts are "
        "masked for roles without `audit.view_pii`."
    ),
    "VERSION": "1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/(?:.*/)?api/",
    # The ingest endpoints (channels) and the event schemas, tagged "Ingest".
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "audit.api.ingest_docs.ingest_paths",
    ],
    "ENUM_NAME_OVERRIDES": {
        "AuthorKindEnum": AuthorKind.choices,
        "ConversationStatusEnum": Conversation.Status.choices,
        "DeliveryStatusEnum": DeliveryStatus.choices,
        "FlagStatusEnum": Flag.Status.choices,
        "FlagKindEnum": Flag.Kind.choices,
        "WaitKindEnum": Wait.Kind.choices,
        "ScoreSourceEnum": Score.Source.choices,
        "JourneyKindEnum": [(k, k) for k in s.JOURNEY_KINDS],
    },
}


class ApiSchemaGenerator(SchemaGenerator):
    """The schema of this API only, whatever else the host's URLs hold (other DRF views may
    not use drf-spectacular's schema class)."""

    def _initialise_endpoints(self) -> None:
        super()._initialise_endpoints()
        self.endpoints = [e for e in self.endpoints if issubclass(e[3].cls, AuditorAPI)]


class _Docs:
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [DocsAccess]


# Swagger UI and Redoc style their widgets with <style> elements and style="" attributes
# they write at run time: on these two pages only, the Content-Security-Policy (django-csp,
# config/settings.py) allows inline styles. Scripts stay our own static files (the Swagger
# UI's start script is served by the view itself, ?script).
DOCS_STYLE_SRC = {"style-src": [SELF, UNSAFE_INLINE]}


class SchemaView(_Docs, SpectacularAPIView):
    custom_settings = SCHEMA_SETTINGS
    generator_class = ApiSchemaGenerator


# Whatever a host's SPECTACULAR_SETTINGS say, the docs' scripts come from the
# drf_spectacular_sidecar app's static files (many customers' networks have no internet).
@method_decorator(csp_replace(DOCS_STYLE_SRC), name="dispatch")
class SwaggerView(_Docs, SpectacularSwaggerSplitView):
    title = SCHEMA_SETTINGS["TITLE"]

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return _get_sidecar_url(f"swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return _get_sidecar_url("swagger-ui-dist/favicon-32x32.png")


@method_decorator(csp_replace(DOCS_STYLE_SRC), name="dispatch")
class RedocView(_Docs, SpectacularRedocView):
    title = SCHEMA_SETTINGS["TITLE"]
    template_name = "audit/api/redoc.html"

    @staticmethod
    def _redoc_standalone() -> str:
        return reverse("audit:api:redoc_bundle")


# Redoc's bundle draws its maker's logo from a CDN in the sidebar ("API docs by Redocly"),
# with no option to turn it off: served from here with that one address made an empty data
# URL, so the docs ask nothing of the internet (the image fails quietly and Redoc hides it).
REDOC_LOGO = 'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"'


@functools.cache
def _redoc_bundle() -> bytes:
    path = finders.find("drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js")
    with open(path, encoding="utf-8") as bundle:
        return bundle.read().replace(REDOC_LOGO, 'src:"data:,"').encode()


def redoc_bundle(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_redoc_bundle(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response
