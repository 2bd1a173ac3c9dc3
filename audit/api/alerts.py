"""The alerts API (alerts app): alerts with their history and the acknowledge / snooze /
mute actions, and the rules (managers create and change them; every change is a version).
Reading needs the auditor's view permission; acting needs audit.act_on_flags. Destinations
are not exposed (their URLs and keys are secrets): the pages manage them."""

from datetime import timedelta
from typing import Any

import django_filters as df
from django.core.exceptions import ValidationError as ModelValidationError
from django.utils import timezone
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from alerts.lifecycle import alert_acknowledge, alert_mute, alert_snooze
from alerts.models import Alert, AlertEvent, Destination, Rule, RuleVersion
from alerts.rules import FIELDS, rule_save, rule_sentence
from audit.roles import FLAGS, can

from .pagination import KeysetPagination
from .permissions import CanActOnFlags, CanViewAuditor
from .views import AuditorAPI, _List, documented


class AlertEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertEvent
        fields = ["kind", "at", "by", "note"]


class AlertSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule.name")
    rule_id = serializers.IntegerField()
    inbox_url = serializers.SerializerMethodField(
        help_text="The inbox filtered to the conversations behind the alert.")

    class Meta:
        model = Alert
        fields = ["id", "rule_id", "rule", "group_key", "state", "severity", "title",
                  "summary", "value", "threshold", "sample", "occurrences", "first_fired_at",
                  "last_fired_at", "resolved_at", "acknowledged_at", "acknowledged_by",
                  "snoozed_until", "muted", "conversation_ids", "inbox_url"]

    def get_inbox_url(self, alert: Alert) -> str:
        return f"/inbox/?alert={alert.pk}"


class AlertDetailSerializer(AlertSerializer):
    events = AlertEventSerializer(many=True, read_only=True)

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "events"]


class AlertActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["acknowledge", "snooze", "mute", "unmute"])
    hours = serializers.IntegerField(required=False, min_value=1, max_value=168,
                                     help_text="Snooze: for how long (1-168 hours).")
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class AlertFilter(df.FilterSet):
    state = df.ChoiceFilter(choices=Alert.State.choices)
    rule = df.NumberFilter(field_name="rule_id")

    class Meta:
        model = Alert
        fields = ["state", "rule"]


class AlertList(_List):
    """Alerts, most recently seen first."""

    queryset = Alert.objects.select_related("rule")
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering = ("-last_fired_at", "-id")


class AlertDetail(AuditorAPI, generics.RetrieveAPIView):
    """An alert with its history."""

    queryset = Alert.objects.select_related("rule").prefetch_related("events")
    serializer_class = AlertDetailSerializer


class AlertAction(AuditorAPI, generics.GenericAPIView):
    """Acknowledge, snooze or mute an alert (managers)."""

    queryset = Alert.objects.all()
    serializer_class = AlertActionSerializer
    permission_classes = [CanViewAuditor, CanActOnFlags]

    @documented(request=AlertActionSerializer, responses=AlertDetailSerializer)
    def post(self, request: Request, pk: int) -> Response:
        alert = self.get_object()
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        action, by = data.validated_data["action"], request.user.get_username()
        note = data.validated_data.get("note", "")
        if action == "acknowledge":
            alert = alert_acknowledge(alert=alert, by=by, note=note)
        elif action == "snooze":
            if "hours" not in data.validated_data:
                raise ValidationError({"hours": ["Say for how many hours to snooze."]})
            alert = alert_snooze(alert=alert, by=by, note=note, until=timezone.now()
                                 + timedelta(hours=data.validated_data["hours"]))
        else:
            alert = alert_mute(alert=alert, by=by, muted=action == "mute", note=note)
        alert = self.get_queryset().prefetch_related("events").get(pk=alert.pk)
        return Response(AlertDetailSerializer(alert).data)


class RuleVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RuleVersion
        fields = ["version", "changed_by", "changed_at", "changes"]


class _NameField(serializers.SlugRelatedField):
    """A destination by name; a name PostgreSQL cannot even look up (a NUL) is a 400."""

    def to_internal_value(self, data: Any) -> Any:
        if "\x00" in str(data):
            self.fail("does_not_exist", slug_name=self.slug_field,
                      value=str(data).replace("\x00", ""))
        return super().to_internal_value(data)


class RuleSerializer(serializers.ModelSerializer):
    destinations = _NameField(
        slug_field="name", many=True, required=False, queryset=Destination.objects.all(),
        help_text="Destination names (set up on the destinations page).")
    sentence = serializers.SerializerMethodField(help_text="What the rule watches, in words.")

    class Meta:
        model = Rule
        fields = ["id", *FIELDS, "destinations", "version", "updated_at", "updated_by",
                  "sentence"]
        read_only_fields = ["version", "updated_at", "updated_by"]

    def get_sentence(self, rule: Rule) -> str:
        return rule_sentence(rule)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The one validation lives in alerts.rules.rule_save; it is run in save().
        return attrs

    def save(self, **kwargs: Any) -> Rule:
        data = dict(self.validated_data)
        destinations = data.pop("destinations", None)
        try:
            self.instance = rule_save(rule=self.instance, data=data,
                                      by=self.context["request"].user.get_username(),
                                      destinations=destinations)
        except ModelValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        return self.instance


class RuleDetailSerializer(RuleSerializer):
    versions = RuleVersionSerializer(many=True, read_only=True)

    class Meta(RuleSerializer.Meta):
        fields = [*RuleSerializer.Meta.fields, "versions"]


class _RuleWrites(CanActOnFlags):
    message = "Only managers may change alert rules (permission audit.act_on_flags)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in ("GET", "HEAD", "OPTIONS") or can(request.user, FLAGS)


class RuleList(AuditorAPI, generics.ListCreateAPIView):
    """Alert rules; POST creates one (managers)."""

    queryset = Rule.objects.prefetch_related("destinations")
    serializer_class = RuleSerializer
    permission_classes = [CanViewAuditor, _RuleWrites]
    pagination_class = KeysetPagination
    ordering = ("-id",)


class RuleDetail(AuditorAPI, generics.RetrieveUpdateAPIView):
    """A rule with its versions; PUT/PATCH records a new version (managers)."""

    queryset = Rule.objects.prefetch_related("destinations", "versions")
    serializer_class = RuleDetailSerializer
    permission_classes = [CanViewAuditor, _RuleWrites]


