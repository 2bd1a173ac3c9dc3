"""Rules are saved through these services only, so every change is a new version with who
changed what (RuleVersion)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from conversations.models import Flag

from .metrics import METRICS, first_upper
from .models import Destination, Rule, RuleVersion
from .releases import RELEASE_METRICS

FIELDS = ["name", "kind", "enabled", "severity", "description", "flag_kinds", "min_severity",
          "channels", "queues", "brands", "open_minutes", "metric", "group_by", "comparison",
          "threshold", "window_minutes", "min_sample", "anomaly_z", "min_history_weeks",
          "alpha", "digest"]


def rule_validate(rule: Rule) -> None:
    """Raise ValidationError naming each field that cannot work."""
    errors: dict[str, str] = {}
    bad_kinds = set(rule.flag_kinds or []) - set(Flag.Kind.values)
    if bad_kinds:
        errors["flag_kinds"] = f"Unknown flag kinds: {', '.join(sorted(bad_kinds))}."
    if rule.kind in (Rule.Kind.METRIC, Rule.Kind.ANOMALY, Rule.Kind.RELEASE):
        metric = METRICS.get(rule.metric)
        if metric is None:
            errors["metric"] = f"Choose one of: {', '.join(METRICS)}."
        elif rule.kind == Rule.Kind.RELEASE and rule.metric not in RELEASE_METRICS:
            errors["metric"] = f"Release rules compare: {', '.join(RELEASE_METRICS)}."
        elif (rule.group_by and rule.kind != Rule.Kind.RELEASE
              and rule.group_by not in metric.groups):
            errors["group_by"] = f"{metric.label} can be grouped by: {', '.join(metric.groups)}."
        if rule.kind == Rule.Kind.METRIC and rule.threshold is None:
            errors["threshold"] = "A metric rule needs a threshold."
        if rule.kind == Rule.Kind.RELEASE and rule.group_by not in ("model", "prompt_version"):
            errors["group_by"] = "A release rule compares AI models or prompt versions."
    elif rule.group_by not in ("", "channel", "queue", "kind", "brand", "conversation"):
        errors["group_by"] = "Flag alerts group by channel, queue, kind, brand or conversation."
    if not 0 < rule.alpha < 0.5:
        errors["alpha"] = "The significance level must be between 0 and 0.5."
    if not rule.window_minutes:
        errors["window_minutes"] = "The window must be at least one minute."
    if errors:
        raise ValidationError(errors)


def _snapshot(rule: Rule) -> dict[str, Any]:
    data = {name: getattr(rule, name) for name in FIELDS}
    data["destinations"] = sorted(rule.destinations.values_list("name", flat=True))
    return data


def rule_save(*, rule: Rule | None = None, data: dict[str, Any], by: str,
              destinations: list[Destination] | None = None) -> Rule:
    """Create a rule (rule=None) or change one; either way a new version is recorded."""
    with transaction.atomic():
        if rule is None:
            rule, before = Rule(), {}
        else:
            rule = Rule.objects.select_for_update().get(pk=rule.pk)
            before = _snapshot(rule)
        for name, value in data.items():
            if name not in FIELDS:
                raise ValidationError({name: "Not a field of a rule."})
            setattr(rule, name, value)
        rule_validate(rule)
        if before:
            rule.version += 1
        rule.updated_by = by
        rule.save()
        if destinations is not None:
            rule.destinations.set(destinations)
        after = _snapshot(rule)
        changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
        if before and not changes:  # nothing changed: no new version
            rule.version -= 1
            Rule.objects.filter(pk=rule.pk).update(version=rule.version)
            return rule
        RuleVersion.objects.create(rule=rule, version=rule.version, changed_by=by,
                                   changed_at=timezone.now(), fields=after, changes=changes)
    return rule


def rule_sentence(rule: Rule) -> str:
    """What the rule watches, in words (rules list, API)."""
    per = {"channel": " per channel", "queue": " per queue", "model": " per AI model",
           "prompt_version": " per prompt version", "kind": " per flag kind",
           "brand": " per brand", "conversation": " per conversation"}.get(rule.group_by, "")
    if rule.kind == Rule.Kind.FLAG:
        kinds = (", ".join(Flag.Kind(k).label.lower() for k in rule.flag_kinds
                           if k in Flag.Kind.values) or "any") + " flag"
        where = "".join(f" {word} {', '.join(values)}" for word, values in (
            ("on", rule.channels), ("in queue", rule.queues), ("for brand", rule.brands))
            if values)
        wait = (f", still open after {rule.open_minutes} min" if rule.open_minutes else "")
        return (f"A new {kinds} ({rule.get_min_severity_display().lower()} or worse){where}"
                f"{wait}; one alert{per or ' for the rule'}.")
    metric = METRICS.get(rule.metric)
    label = metric.label if metric else rule.metric
    window = (f"{rule.window_minutes // 60} h" if rule.window_minutes % 60 == 0
              else f"{rule.window_minutes} min")
    sample = f"at least {rule.min_sample} in the sample"
    if rule.kind == Rule.Kind.METRIC:
        return (f"{first_upper(label)} over {window} {rule.comparison} {rule.threshold:g}"
                f"{metric.unit.strip() if metric and metric.unit == '%' else ''}"
                f"{per} ({sample}).")
    if rule.kind == Rule.Kind.ANOMALY:
        direction = "higher" if rule.comparison == Rule.Comparison.ABOVE else "lower"
        return (f"{first_upper(label)} over {window} much {direction} than usual for that "
                f"hour of the week (robust z ≥ {rule.anomaly_z:g}, {rule.min_history_weeks}+ "
                f"weeks of history, {sample}){per}.")
    what = "AI model" if rule.group_by == "model" else "prompt version"
    return (f"A new {what} against the previous one on {label} over {window} "
            f"(significance {rule.alpha:g}, {rule.min_sample}+ conversations each).")
