"""The alert pages (alerts app): alerts with acknowledge / snooze / mute, an alert's history
and the inbox link, the rules (managers edit), destinations with "send test", and the dead
letters. Thin: forms validate, alerts' services act. Everything passes the masking gate
(audit.views.requires)."""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from alerts.delivery import delivery_retry, destination_test
from alerts.destinations import destination_save
from alerts.lifecycle import alert_acknowledge, alert_mute, alert_snooze
from alerts.metrics import METRICS
from alerts.models import Alert, Delivery, Destination, Rule
from alerts.rules import rule_save, rule_sentence
from alerts.selectors import (
    alert_detail,
    alerts_list,
    dead_letters,
    destinations_list,
    rules_list,
)
from conversations.models import Channel, Flag

from .roles import FLAGS, VIEW
from .views import _viewer, requires

SNOOZE_HOURS = (1, 4, 24)
GROUPS = [("", "nothing (one alert per rule)"), ("channel", "channel"), ("queue", "queue"),
          ("model", "AI model"), ("prompt_version", "prompt version"), ("kind", "flag kind"),
          ("brand", "brand"), ("conversation", "conversation")]


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=Rule.Kind.choices)
    enabled = forms.BooleanField(required=False, initial=True)
    severity = forms.ChoiceField(choices=Flag.Severity.choices, initial="high")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    flag_kinds = forms.MultipleChoiceField(required=False, choices=Flag.Kind.choices,
                                           widget=forms.CheckboxSelectMultiple,
                                           help_text="Flag rules. None ticked: any kind.")
    min_severity = forms.ChoiceField(choices=Flag.Severity.choices, initial="info")
    channels = forms.MultipleChoiceField(required=False, choices=Channel.choices,
                                         widget=forms.CheckboxSelectMultiple)
    queues = forms.CharField(required=False, help_text="Comma-separated; empty: any.")
    brands = forms.CharField(required=False, help_text="Comma-separated brand names.")
    open_minutes = forms.IntegerField(required=False, min_value=1,
                                      help_text="Only flags still open this long.")
    metric = forms.ChoiceField(required=False, choices=[("", "—")] + [
        (m.name, m.label) for m in METRICS.values()])
    group_by = forms.ChoiceField(required=False, choices=GROUPS)
    comparison = forms.ChoiceField(choices=Rule.Comparison.choices)
    threshold = forms.FloatField(required=False)
    window_minutes = forms.IntegerField(min_value=1, initial=60)
    min_sample = forms.IntegerField(min_value=0, initial=20)
    anomaly_z = forms.FloatField(min_value=0.5, initial=3.5, label="Anomaly: robust z")
    min_history_weeks = forms.IntegerField(min_value=1, max_value=8, initial=3)
    alpha = forms.FloatField(initial=0.05, label="Release: significance level")
    digest = forms.ChoiceField(required=False, choices=Rule.Digest.choices)
    destinations = forms.ModelMultipleChoiceField(
        required=False, queryset=Destination.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple)

    def data_for_rule(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("destinations")
        data["queues"], data["brands"] = _list(data["queues"]), _list(data["brands"])
        return data


def _value_words(field: forms.Field | None, value: Any) -> str:
    """One stored value of a rule in the words its form shows ("Handoff dropped", "yes")."""
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_value_words(field, item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_value_words(None, item)}" for key, item in value.items())
    choices = dict(getattr(field, "choices", None) or []) if not isinstance(
        field, forms.ModelMultipleChoiceField) else {}
    return str(choices.get(value, value))


def rule_change_words(changes: dict[str, Any]) -> list[str]:
    """A rule version's changes as lines people read: `Flag kinds: Handoff stalled →
    Handoff stalled, Handoff dropped` (never a list's repr or a field's code name)."""
    lines = []
    if not isinstance(changes, dict):  # written by something else than rule_save
        return [_value_words(None, changes)]
    for name, change in changes.items():
        field = RuleForm.base_fields.get(name)
        label = (field.label if field and field.label else
                 str(name).replace("_", " ").capitalize())
        if isinstance(change, list | tuple) and len(change) == 2:
            before, after = change
            lines.append(f"{label}: {_value_words(field, before)} → "
                         f"{_value_words(field, after)}")
        else:
            lines.append(f"{label}: {_value_words(field, change)}")
    return lines


class DestinationForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=Destination.Kind.choices)
    target = forms.CharField(required=False, max_length=2048,
                             help_text="E-mail: addresses, comma-separated. Otherwise the URL.")
    secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                             help_text="Webhook: whsec_… secret. PagerDuty: routing key. "
                                       "Left empty, the saved one is kept.")
    quiet_start = forms.TimeField(required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    quiet_end = forms.TimeField(required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    quiet_timezone = forms.CharField(max_length=64, initial="UTC")
    enabled = forms.BooleanField(required=False, initial=True)


def _errors_into(form: forms.Form, error: ValidationError) -> None:
    for field, messages_ in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages_)


@require_GET
@requires(VIEW)
def alerts(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "firing")
    rows = list(alerts_list(state=state if state != "all" else "")[:200])
    counts = {s: Alert.objects.filter(state=s).count() for s in Alert.State.values}
    return render(request, "audit/alerts.html", {
        **_viewer(request), "rows": rows, "state": state, "counts": counts,
        "snooze_hours": SNOOZE_HOURS, "now": timezone.now()})


@require_GET
@requires(VIEW)
def alert(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        item = alert_detail(alert_id=alert_id)
    except Alert.DoesNotExist:
        return render(request, "audit/forbidden.html", {"missing": True}, status=404)
    return render(request, "audit/alert.html", {
        **_viewer(request), "alert": item, "events": list(item.events.all()),
        "deliveries": list(item.deliveries.all()), "snooze_hours": SNOOZE_HOURS,
        "now": timezone.now(),
        "inbox_url": f"{reverse('audit:inbox')}?alert={item.pk}",
        "rule_text": rule_sentence(item.rule)})


@require_POST
@requires(FLAGS)
def alert_action(request: HttpRequest, alert_id: int) -> HttpResponse:
    item = get_object_or_404(Alert, pk=alert_id)
    action, by = request.POST.get("action", ""), request.user.get_username()
    if action == "acknowledge":
        alert_acknowledge(alert=item, by=by)
        messages.success(request, "Acknowledged: no more notifications until it resolves.")
    elif action == "snooze":
        try:
            hours = int(request.POST.get("hours", "1"))
        except ValueError:
            hours = 0
        if hours not in SNOOZE_HOURS:
            return HttpResponse("Snooze for 1, 4 or 24 hours.", status=400)
        alert_snooze(alert=item, by=by, until=timezone.now() + timedelta(hours=hours))
        messages.success(request, f"Snoozed for {hours} h.")
    elif action in ("mute", "unmute"):
        alert_mute(alert=item, by=by, muted=action == "mute")
        messages.success(request, "Muted." if action == "mute" else "Unmuted.")
    else:
        return HttpResponse("Unknown action.", status=400)
    back = request.POST.get("back", "")
    return HttpResponseRedirect(back if back.startswith("/") and not back.startswith("//")
                                else reverse("audit:alert", args=[item.pk]))


@require_GET
@requires(VIEW)
def rules(request: HttpRequest) -> HttpResponse:
    rows = [(rule, rule_sentence(rule)) for rule in rules_list()]
    return render(request, "audit/alert_rules.html", {**_viewer(request), "rows": rows})


@requires(FLAGS)
def rule_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=rule_id) if rule_id else None
    if request.method == "POST":
        form = RuleForm(request.POST)
        if form.is_valid():
            try:
                saved = rule_save(rule=rule, data=form.data_for_rule(),
                                  by=request.user.get_username(),
                                  destinations=list(form.cleaned_data["destinations"]))
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                messages.success(request, f"Saved version {saved.version} of {saved.name}.")
                return HttpResponseRedirect(reverse("audit:alert_rules"))
    elif rule is not None:
        initial = {name: getattr(rule, name) for name in RuleForm.base_fields
                   if name != "destinations"}
        initial["queues"], initial["brands"] = ", ".join(rule.queues), ", ".join(rule.brands)
        initial["destinations"] = list(rule.destinations.all())
        form = RuleForm(initial=initial)
    else:
        form = RuleForm()
    return render(request, "audit/alert_rule_form.html", {
        **_viewer(request), "form": form, "rule": rule,
        "versions": [(v, rule_change_words(v.changes)) for v in rule.versions.all()[:20]]
        if rule else []})


@requires(FLAGS)
def destinations(request: HttpRequest, destination_id: int | None = None) -> HttpResponse:
    """Destinations (managers only: URLs and keys are secrets), the form for one, and the
    dead letters."""
    current = get_object_or_404(Destination, pk=destination_id) if destination_id else None
    if request.method == "POST":
        form = DestinationForm(request.POST)
        if form.is_valid():
            try:
                saved = destination_save(destination=current, data=form.cleaned_data)
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                messages.success(request, f"Saved {saved.name}.")
                return HttpResponseRedirect(reverse("audit:alert_destinations"))
    else:
        form = DestinationForm(initial={
            name: getattr(current, name) for name in DestinationForm.base_fields
            if name != "secret"} if current else None)
    return render(request, "audit/alert_destinations.html", {
        **_viewer(request), "form": form, "current": current,
        "rows": list(destinations_list()), "dead": list(dead_letters())})


@require_POST
@requires(FLAGS)
def destination_send_test(request: HttpRequest, destination_id: int) -> HttpResponse:
    target = get_object_or_404(Destination, pk=destination_id)
    attempt = destination_test(destination=target)
    if attempt.sent:
        messages.success(request, f"Test message sent to {target.name}.")
    else:
        messages.error(request, f"The test message to {target.name} failed: {attempt.error}")
    return HttpResponseRedirect(reverse("audit:alert_destinations"))


@require_POST
@requires(FLAGS)
def delivery_retry_view(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = get_object_or_404(Delivery, pk=delivery_id, status=Delivery.Status.DEAD)
    delivery_retry(delivery=delivery)
    messages.success(request, "Queued again.")
    return HttpResponseRedirect(reverse("audit:alert_destinations"))
