"""Query filters (django-filter). A value that does not validate is a 400 naming the field
and the reason (DjangoFilterBackend raises it); nothing reaches the database unchecked.

Dates are days in the current timezone; `until` is inclusive. Days are kept between 1900
and 9998 so the day after `until` (and the timezone shift) always exist."""

from datetime import date, timedelta

import django_filters as df
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from audit.inbox_filters import InboxFilters, day_start
from audit.keyset import SORTS
from audit.outcome_rules import OUTCOME_FILTERS
from audit.qa_selectors import flag_status_q
from audit.views import FLAG_KINDS
from conversations.models import AuthorKind, Channel, Conversation, Direction, Flag, Message
from handoffs.machine import State
from handoffs.models import Handoff
from scoring.models import Score
from scoring.qa_counted import QA_FILTERS

FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def day_in_range(value: date) -> None:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValidationError(f"must be between {FIRST_DAY} and {LAST_DAY}")


def period_check(since: date | None, until: date | None) -> None:
    if since and until and since > until:
        raise ValidationError({"until": "must not be before since"})


class DayField(forms.DateField):
    default_validators = [day_in_range]


class DayFilter(df.DateFilter):
    field_class = DayField


class IdFilter(df.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


def _choices(values: list[str]) -> list[tuple[str, str]]:
    return [(v, v.replace("_", " ")) for v in values]


class PeriodForm(forms.Form):
    def clean(self) -> dict:
        data = super().clean()
        period_check(data.get("since"), data.get("until"))
        return data


class _PeriodFilterSet(df.FilterSet):
    """since / until (inclusive days) on the model's `period_field`."""

    period_field = ""
    since = DayFilter(method="_since", label="From this day (inclusive)")
    until = DayFilter(method="_until", label="To this day (inclusive)")

    def _since(self, qs: QuerySet, name: str, value: date) -> QuerySet:
        return qs.filter(**{f"{self.period_field}__gte": day_start(value)})

    def _until(self, qs: QuerySet, name: str, value: date) -> QuerySet:
        return qs.filter(**{f"{self.period_field}__lt": day_start(value + timedelta(days=1))})

    class Meta:
        fields: list[str] = []
        form = PeriodForm


class _InConversationFilterSet(_PeriodFilterSet):
    conversation = IdFilter(field_name="conversation_id")


class ConversationFilter(_PeriodFilterSet):
    """The inbox's filters (audit.inbox_filters.InboxFilters), validated here and applied by
    audit.selectors.inbox_page; `since`/`until` are on the last activity."""

    period_field = "last_activity_at"
    channel = df.ChoiceFilter(choices=Channel.choices)
    flag_kind = df.ChoiceFilter(choices=_choices(FLAG_KINDS),
                                help_text="Has a flag of this kind.")
    flag_status = df.ChoiceFilter(choices=Flag.Status.choices,
                                  help_text="Has a flag in this status.")
    handoff_state = df.ChoiceFilter(
        choices=[*_choices([s.value for s in State]), ("any", "any handoff"),
                 ("none", "no handoff")],
        help_text="Has a handoff in this state (any: a handoff at all; none: no handoff).")
    resolved = df.ChoiceFilter(
        choices=[("yes", "resolved"), ("no", "not resolved")],
        help_text="An outcome said resolved, or a handoff ended resolved (or neither).")
    agent = df.CharFilter(max_length=255, help_text="A human agent's id.")
    model = df.CharFilter(max_length=255, help_text="An AI model requested or used.")
    prompt_version = df.CharFilter(max_length=100)
    brand = df.CharFilter(max_length=64, help_text="A brand voice's name: its conversations.")
    queue = df.CharFilter(max_length=100, help_text="A handoff went through this queue.")
    team = df.CharFilter(max_length=100, help_text="A handoff was assigned to this team.")
    outcome = df.ChoiceFilter(choices=list(OUTCOME_FILTERS.items()),
                              help_text="What a report figure counts (docs/reports.md).")
    qa = df.ChoiceFilter(choices=list(QA_FILTERS.items()),
                         help_text="What a QA results figure counts: reviewed, passed, "
                         "failed (the review, or with qa_category that category's answer), "
                         "critical_failed (docs/reports.md).")
    scorecard = df.CharFilter(max_length=64, help_text="Has a counted review on this "
                              "scorecard (its key).")
    qa_category = df.CharFilter(max_length=48, help_text="Has a counted answer in this QA "
                                "category (its key).")
    dates = df.ChoiceFilter(choices=[("started", "start")],
                            help_text="started: since/until are on the start, not the "
                            "last activity (the reports' periods).")
    q = df.CharFilter(max_length=200, help_text="Text in the address, subject or messages.")
    alert = df.NumberFilter(min_value=1,
                            help_text="An alert's id: the conversations behind it.")
    assigned = df.ChoiceFilter(choices=[("me", "me")],
                               help_text="me: has an open or acknowledged flag you own.")
    ordering = df.ChoiceFilter(choices=[(s, s) for s in SORTS], empty_label=None,
                               help_text="recent (default) or severity (most severe first).")

    class Meta(_PeriodFilterSet.Meta):
        model = Conversation

    def inbox_filters(self) -> InboxFilters:
        data = self.form.cleaned_data
        return InboxFilters(**{
            name: data.get(name) or (None if name in ("since", "until", "alert") else "")
            for name in InboxFilters.__dataclass_fields__
        })

    def sort(self) -> str:
        return self.form.cleaned_data.get("ordering") or "recent"


class MessageFilter(_InConversationFilterSet):
    period_field = "sent_at"
    channel = df.ChoiceFilter(field_name="conversation__channel", choices=Channel.choices)
    author_kind = df.ChoiceFilter(choices=AuthorKind.choices)
    direction = df.ChoiceFilter(choices=Direction.choices)

    class Meta(_PeriodFilterSet.Meta):
        model = Message


class HandoffFilter(_InConversationFilterSet):
    """`since`/`until` are on when the handoff was requested."""

    period_field = "requested_at"
    channel = df.ChoiceFilter(choices=Channel.choices)
    state = df.ChoiceFilter(choices=_choices([s.value for s in State]))
    queue = df.CharFilter(max_length=100)
    agent = df.CharFilter(field_name="agent_id", max_length=255, help_text="The agent's id.")

    class Meta(_PeriodFilterSet.Meta):
        model = Handoff


class FlagFilter(_InConversationFilterSet):
    """`since`/`until` are on when the flag was raised."""

    period_field = "raised_at"
    kind = df.ChoiceFilter(choices=_choices(FLAG_KINDS))
    status = df.ChoiceFilter(choices=Flag.Status.choices, method="_status",
                             help_text="The status the caller sees (a blind reviewer sees a "
                                       "flag another review dismissed as open).")
    severity = df.ChoiceFilter(choices=Flag.Severity.choices)
    owner = df.CharFilter(max_length=150, method="_owner",
                          help_text="me, or a username: the flags that user owns; "
                                    "none: flags nobody owns.")

    class Meta(_PeriodFilterSet.Meta):
        model = Flag

    def _owner(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if value == "none":
            return qs.filter(owner__isnull=True)
        if value == "me":
            return qs.filter(owner_id=self.request.user.pk)
        return qs.filter(owner__username=value)

    def _status(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(flag_status_q(user=self.request.user, status=value))


class ScoreFilter(_InConversationFilterSet):
    """`since`/`until` are on when the judged message was sent."""

    period_field = "occurred_at"
    message = IdFilter(field_name="message_id")
    brand = IdFilter(field_name="brand_id")
    name = df.CharFilter(max_length=64, help_text="The dimension, e.g. brand_tone, warmth.")
    source = df.ChoiceFilter(choices=Score.Source.choices)
    subject_type = df.ChoiceFilter(choices=Score.SubjectType.choices)
    channel = df.ChoiceFilter(choices=Channel.choices)
    author_kind = df.ChoiceFilter(choices=AuthorKind.choices)

    class Meta(_PeriodFilterSet.Meta):
        model = Score
