"""GET /api/access-log/: the access log (audit.access_log), managers only."""

import django_filters as df
from django.db.models import QuerySet
from rest_framework import serializers

from audit.access_log import AccessFilters, access_entries, access_sentence
from audit.access_models import AccessEntry
from audit.roles import ACCESS_LOG

from .filters import IdFilter, _PeriodFilterSet
from .permissions import CanViewAuditor, _Holds
from .views import _List


class CanReadAccessLog(_Holds):
    codename = ACCESS_LOG
    message = "Only managers may read the access log (permission audit.view_access_log)."


class AccessEntryFilter(_PeriodFilterSet):
    """`since`/`until` are on when the access happened."""

    period_field = "at"
    user = df.CharFilter(field_name="username", max_length=150,
                         help_text="A username: that person's accesses.")
    kind = df.ChoiceFilter(choices=AccessEntry.Kind.choices)
    conversation = IdFilter(field_name="conversation_id")

    class Meta(_PeriodFilterSet.Meta):
        model = AccessEntry


class AccessEntrySerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="username")
    kind_label = serializers.CharField(source="get_kind_display")
    sentence = serializers.SerializerMethodField()

    class Meta:
        model = AccessEntry
        fields = ("id", "at", "user", "kind", "kind_label", "what", "conversation_id",
                  "objects_label", "ip", "path", "sentence")

    def get_sentence(self, entry: AccessEntry) -> str:
        """The entry in words: 'ana opened the raw events of conversation #123'."""
        return access_sentence(entry)


class AccessLogList(_List):
    """Who opened raw events or unmasked personal data, newest first: the replay, customer,
    raw events and admin record pages, the API's conversation and messages, CSV exports
    with personal data. Managers only; entries are never changed or deleted."""

    serializer_class = AccessEntrySerializer
    filterset_class = AccessEntryFilter
    permission_classes = [CanViewAuditor, CanReadAccessLog]
    ordering = ("-at", "-id")

    def get_queryset(self) -> QuerySet[AccessEntry]:
        return access_entries(filters=AccessFilters())
