"""What the API returns. Read-only views of the rows the selectors load. For callers without
view_pii the whole answer passes the masking gate (audit.masking, in AuditorAPI); customer
addresses are formatted by `MaskedAddress` from `context["pii"]`."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.masking import mask_address
from audit.qa_selectors import flags_blind_mask
from audit.selectors import SEVERITY_BY_RANK
from audit.triage import flag_trails
from conversations.flag_text import flag_kind_label, flag_summary
from conversations.models import (
    AIStep,
    AuthorKind,
    Conversation,
    ConversationEvent,
    Flag,
    FlagEvent,
    Message,
    MessageStatusEvent,
    Outcome,
)
from handoffs.models import Handoff, HandoffTransition, Wait
from scoring.models import Score

# --- masking ------------------------------------------------------------------------------
# Texts are masked by the API's gate (audit.masking.response_mask, in AuditorAPI), whatever
# field they come from; customer addresses are identifiers and are formatted here.


def _sees_pii(field: serializers.Field) -> bool:
    return bool(field.context.get("pii", False))


class MaskedAddress(serializers.CharField):
    """A customer address: phone +••••••••3456, e-mail p•••@host, other ids' last two."""

    def to_representation(self, value: Any) -> str:
        text = super().to_representation(value)
        return text if _sees_pii(self) else mask_address(text)


@extend_schema_field(OpenApiTypes.ANY)
class AnyJSON(serializers.JSONField):
    """JSON as stored (evidence, tool arguments, event data)."""


class ReadOnlyModelSerializer(serializers.ModelSerializer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.read_only = True


# --- messages ------------------------------------------------------------------------------


class StatusEventSerializer(ReadOnlyModelSerializer):
    class Meta:
        model = MessageStatusEvent
        fields = ["status", "provider_status", "error_code", "error_message", "occurred_at"]


class AuthorSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AuthorKind.choices)
    external_id = serializers.CharField(help_text="Masked for customers without view_pii.")
    display_name = serializers.CharField()

    def to_representation(self, participant: Any) -> dict[str, str]:
        customer = participant.kind == AuthorKind.CUSTOMER and not _sees_pii(self)
        return {
            "kind": participant.kind,
            "external_id": mask_address(participant.external_id) if customer
            else participant.external_id,
            "display_name": mask_address(participant.display_name) if customer
            else participant.display_name,
        }


class MessageSerializer(ReadOnlyModelSerializer):
    author = AuthorSerializer(source="participant", allow_null=True)
    body = serializers.CharField()
    body_new = serializers.CharField(
        help_text="E-mail: the new part of a reply, without quoted history.")
    subject = serializers.CharField()
    # Prefetched as a list by the views (conversations.selectors.conversation_messages).
    status_history = StatusEventSerializer(source="status_list", many=True)

    class Meta:
        model = Message
        fields = [
            "id", "conversation", "direction", "author_kind", "author", "body", "body_new",
            "subject", "provider", "provider_message_id", "sent_at", "status", "status_at",
            "error_code", "num_segments", "media", "status_history",
        ]


# --- the AI's steps, events, outcomes --------------------------------------------------------


class AIStepSerializer(ReadOnlyModelSerializer):
    cost = serializers.DecimalField(max_digits=12, decimal_places=6, coerce_to_string=False,
                                    allow_null=True)
    tool_arguments = AnyJSON(allow_null=True)
    tool_result = AnyJSON(allow_null=True)
    tool_error = serializers.CharField()
    system_prompt = serializers.CharField()

    class Meta:
        model = AIStep
        fields = [
            "id", "message", "external_id", "occurred_at", "operation", "agent_name",
            "provider_name", "request_model", "response_model", "prompt_name", "prompt_version",
            "parameters", "input_tokens", "output_tokens", "cached_tokens", "cost",
            "latency_ms", "time_to_first_token_ms", "finish_reason", "tool_name",
            "tool_arguments", "tool_result", "tool_error", "retrieved_documents", "guardrails",
            "system_prompt", "system_prompt_hash",
        ]


class EventSerializer(ReadOnlyModelSerializer):
    data = AnyJSON()

    class Meta:
        model = ConversationEvent
        fields = ["id", "external_id", "type", "occurred_at", "actor_kind", "actor_id",
                  "actor_name", "data"]


class OutcomeSerializer(ReadOnlyModelSerializer):
    attributes = AnyJSON()
    verdict = serializers.CharField()

    class Meta:
        model = Outcome
        fields = ["id", "external_id", "occurred_at", "csat", "resolved", "converted",
                  "escalated", "verdict", "attributes"]


# --- flags ---------------------------------------------------------------------------------


class FlagEventSerializer(ReadOnlyModelSerializer):
    """One entry of a flag's triage trail."""

    class Meta:
        model = FlagEvent
        fields = ["at", "by", "action", "from_value", "to_value", "note"]


class FlagSerializer(ReadOnlyModelSerializer):
    evidence = AnyJSON(help_text="The figures that justify the finding.")
    note = serializers.CharField()
    kind_label = serializers.SerializerMethodField(help_text="The kind in words.")
    summary = serializers.SerializerMethodField(
        help_text="The finding in one or two sentences, built from its evidence.")

    def get_kind_label(self, instance: Flag) -> str:
        return flag_kind_label(instance.kind)

    def get_summary(self, instance: Flag) -> str:
        return flag_summary(instance)
    evidence = AnyJSON(help_text="The figures that justify the finding; answer-quality "
                                 "kinds carry `message_spans` (start, end, text, why) "
                                 "into the subject message's text.")
    note = serializers.CharField(help_text="The latest note (every note is in `trail`).")
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True, help_text="Who owns the flag.")
    trail = serializers.SerializerMethodField(
        help_text="Every status change, note, assignment, due date and ticket link, oldest "
                  "first; never overwritten.")

    @extend_schema_field(FlagEventSerializer(many=True))
    def get_trail(self, instance: Flag) -> list[dict[str, Any]]:
        viewer = self.context.get("viewer")
        trails = self.context.get("trails")
        if trails is None or instance.pk not in trails:
            trails = flag_trails(user=viewer, flags=[instance]) if viewer is not None \
                else {instance.pk: list(instance.trail.order_by("at", "id"))}
        return FlagEventSerializer(trails.get(instance.pk, []), many=True).data

    def to_representation(self, instance: Flag) -> dict[str, Any]:
        # Blind double review: a flag another reviewer's review dismissed reads as open
        # to a reviewer who has not submitted yet (audit.qa_selectors).
        viewer = self.context.get("viewer")
        if viewer is not None:
            flags_blind_mask(user=viewer, flags=[instance],
                             blind=self.context.setdefault("blind_conversations", {}))
        return super().to_representation(instance)

    class Meta:
        model = Flag
        fields = [
            "id", "conversation", "kind", "kind_label", "summary", "severity", "status",
            "subject_type", "subject_id", "evidence", "raised_at", "updated_at",
            "status_changed_at", "status_changed_by", "note", "owner", "due_on", "ticket_url",
            "trail",
        ]


class FlagStatusSerializer(serializers.Serializer):
    """A flag action: acknowledge, resolve, false positive, or reopen (open)."""

    status = serializers.ChoiceField(choices=Flag.Status.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class FlagTriageSerializer(serializers.Serializer):
    """Triage a flag: every field is optional; those sent are changed, and each change
    joins the flag's trail."""

    status = serializers.ChoiceField(choices=Flag.Status.choices, required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    owner = serializers.CharField(required=False, allow_blank=True, max_length=150,
                                  help_text="A username who may act on flags; \"\" unassigns.")
    due_on = serializers.DateField(required=False, allow_null=True)
    ticket_url = serializers.URLField(required=False, allow_blank=True, max_length=500)


# --- handoffs ------------------------------------------------------------------------------


class TransitionSerializer(ReadOnlyModelSerializer):
    handoff_number = serializers.IntegerField(source="handoff.number")
    reason = serializers.CharField()
    evidence = AnyJSON(help_text="What the transition set or saw (deadline, waits ended).")

    class Meta:
        model = HandoffTransition
        fields = ["id", "handoff", "handoff_number", "trigger", "from_state", "to_state",
                  "applied", "occurred_at", "recorded_at", "source_type", "source_id",
                  "reason", "evidence"]


class WaitSerializer(ReadOnlyModelSerializer):
    class Meta:
        model = Wait
        fields = ["id", "kind", "started_at", "allowed_seconds", "business_hours",
                  "deadline_at", "ended_at", "waited_seconds", "met", "stalled_at"]


class HandoffSerializer(ReadOnlyModelSerializer):
    """A handoff with its SLA waits (loaded as `wait_list`)."""

    reason = serializers.CharField()
    waits = WaitSerializer(source="wait_list", many=True)

    class Meta:
        model = Handoff
        fields = [
            "id", "conversation", "number", "channel", "state", "state_entered_at",
            "requested_by", "reason", "queue", "agent_id", "agent_name", "requested_at",
            "queued_at", "assigned_at", "engaged_at", "ended_at", "time_to_human",
            "time_to_human_business", "policy", "window_expires_at",
            "ai_replies_after_request", "dropped_reasons", "dropped_at", "stalled_count",
            "waits",
        ]


class HandoffWithTransitionsSerializer(HandoffSerializer):
    """A handoff with its waits and its whole transition log (`transition_list`)."""

    transitions = TransitionSerializer(source="transition_list", many=True)

    class Meta(HandoffSerializer.Meta):
        fields = [*HandoffSerializer.Meta.fields, "transitions"]


# --- conversations -------------------------------------------------------------------------


class ConversationSerializer(ReadOnlyModelSerializer):
    customer_address = MaskedAddress()
    subject = serializers.CharField()
    severity = serializers.SerializerMethodField(
        help_text="The highest severity among open or acknowledged flags; null: none.")

    class Meta:
        model = Conversation
        fields = ["id", "channel", "customer_address", "business_address", "status", "subject",
                  "started_at", "last_activity_at", "closed_at", "message_count", "severity"]

    @extend_schema_field(serializers.ChoiceField(choices=Flag.Severity.choices, allow_null=True))
    def get_severity(self, conversation: Conversation) -> str | None:
        return SEVERITY_BY_RANK.get(conversation.open_flag_rank)


class OpenWaitSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Wait.Kind.choices)
    since = serializers.DateTimeField()
    waited_seconds = serializers.FloatField(help_text="So far; business seconds if so.")
    allowed_seconds = serializers.FloatField(allow_null=True)
    deadline_at = serializers.DateTimeField(allow_null=True)
    over = serializers.BooleanField(help_text="Waited longer than allowed.")
    business_hours = serializers.BooleanField()


class FlagSummarySerializer(ReadOnlyModelSerializer):
    summary = serializers.SerializerMethodField(
        help_text="The finding in one or two sentences, built from its evidence.")

    def get_summary(self, instance: Flag) -> str:
        return flag_summary(instance)

    class Meta:
        model = Flag
        fields = ["id", "kind", "summary", "severity", "status", "raised_at"]


class HandoffSummarySerializer(ReadOnlyModelSerializer):
    class Meta:
        model = Handoff
        fields = ["id", "number", "state", "state_entered_at", "queue", "agent_id",
                  "agent_name", "requested_at"]


class ConversationRowSerializer(serializers.Serializer):
    """One inbox row (audit.selectors.InboxRow): the conversation, its latest handoff, the
    SLA wait still open in it, and its open or acknowledged flags, most severe first."""

    conversation = ConversationSerializer()
    handoff = HandoffSummarySerializer(allow_null=True)
    wait = OpenWaitSerializer(allow_null=True)
    flags = FlagSummarySerializer(many=True)


JOURNEY_KINDS = ("message", "ai_step", "event", "transition", "outcome", "flag")


class JourneyItemSerializer(serializers.Serializer):
    """One entry of the journey: `kind` says which one of the other fields is set."""

    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=[(k, k) for k in JOURNEY_KINDS])
    message = MessageSerializer(allow_null=True)
    ai_step = AIStepSerializer(allow_null=True)
    event = EventSerializer(allow_null=True)
    transition = TransitionSerializer(allow_null=True)
    outcome = OutcomeSerializer(allow_null=True)
    flag = FlagSerializer(allow_null=True)

    def to_representation(self, item: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.fields["at"].to_representation(item.at),
                               "kind": item.kind}
        for kind in JOURNEY_KINDS:
            out[kind] = self.fields[kind].to_representation(item.obj) if kind == item.kind \
                else None
        return out


class ConversationDetailSerializer(serializers.Serializer):
    """A conversation's whole journey in time order (audit.replay_selectors.Replay)."""

    conversation = ConversationSerializer()
    ai_cost = serializers.FloatField()
    ai_tokens = serializers.IntegerField()
    handoffs = HandoffSerializer(many=True)
    journey = JourneyItemSerializer(source="items", many=True)


# --- scores ----------------------------------------------------------------------------------


class ScoreSerializer(ReadOnlyModelSerializer):
    """A judgment about a message or a conversation, automated or a reviewer's."""

    explanations = AnyJSON(help_text="The rules and figures behind the value.")

    class Meta:
        model = Score
        fields = ["id", "subject_type", "subject_id", "conversation", "message", "brand",
                  "name", "value", "source", "author", "explanations", "channel",
                  "author_kind", "occurred_at", "created_at"]


# --- metrics -------------------------------------------------------------------------------


class SLAFiguresSerializer(serializers.Serializer):
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="met / (met + breached)")


class HandoffMetricsSerializer(serializers.Serializer):
    """handoffs.selectors.HandoffMetrics: one group's figures with their rates (0-1)."""

    key = serializers.CharField(help_text='The group (channel, queue, agent id, day) or "all".')
    handoffs = serializers.IntegerField()
    conversations_with_handoff = serializers.IntegerField()
    reached_human = serializers.IntegerField()
    conversations_dropped = serializers.IntegerField()
    conversations_returned = serializers.IntegerField()
    stalled = serializers.IntegerField()
    time_to_human_p50 = serializers.FloatField(allow_null=True)
    time_to_human_p90 = serializers.FloatField(allow_null=True)
    time_to_human_business_p50 = serializers.FloatField(allow_null=True)
    time_to_human_business_p90 = serializers.FloatField(allow_null=True)
    sla = serializers.DictField(child=SLAFiguresSerializer(),
                                help_text="Per waiting state: requested, queued, assigned, reply.")
    conversations_eligible = serializers.IntegerField(allow_null=True)
    conversations_handed_off = serializers.IntegerField(allow_null=True)
    handoff_rate = serializers.FloatField(allow_null=True)
    dropped_rate = serializers.FloatField(allow_null=True)
    returned_rate = serializers.FloatField(allow_null=True)


class MetricsSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField(help_text="Inclusive.")
    group_by = serializers.CharField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    rows = HandoffMetricsSerializer(many=True)
