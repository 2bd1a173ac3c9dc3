"""Demo alert rules and a history of alerts over the seeded journeys, so `make run` shows
the alert pages with something in them. Idempotent: nothing is added when the demo rules
exist."""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from alerts.lifecycle import alert_acknowledge, alert_snooze
from alerts.models import Alert, Destination, FlagWatermark, Rule
from alerts.rules import rule_save
from alerts.services import alerts_evaluate

DEMO_RULES = [
    {"name": "Dropped handoffs", "kind": "flag", "severity": "high",
     "flag_kinds": ["handoff_dropped"], "group_by": "channel",
     "description": "A customer who asked for a human never got one."},
    {"name": "Leaks to customers", "kind": "flag", "severity": "critical",
     "flag_kinds": ["reasoning_leak", "pii_leak"], "group_by": "kind"},
    {"name": "Stalled handoffs still open after 30 min", "kind": "flag", "severity": "medium",
     "flag_kinds": ["handoff_stalled"], "open_minutes": 30, "digest": "hourly"},
    {"name": "SLA met below 90%", "kind": "metric", "severity": "high", "metric": "sla_met",
     "comparison": "below", "threshold": 90, "window_minutes": 60, "min_sample": 20,
     "group_by": "channel"},
    {"name": "Dropped rate above 5%", "kind": "metric", "severity": "high",
     "metric": "dropped_rate", "threshold": 5, "window_minutes": 30 * 24 * 60,
     "min_sample": 5},
    {"name": "Unusual number of handoffs", "kind": "anomaly", "severity": "medium",
     "metric": "handoffs", "window_minutes": 60, "min_sample": 10},
    {"name": "New prompt version hands off more", "kind": "release", "severity": "high",
     "metric": "handoff_rate", "group_by": "prompt_version", "window_minutes": 14 * 1440,
     "min_sample": 30},
]


@dataclass
class DemoAlertsReport:
    rules: int = 0
    alerts: int = 0


def demo_alerts_seed() -> DemoAlertsReport:
    if Rule.objects.filter(name=DEMO_RULES[0]["name"]).exists():
        return DemoAlertsReport()
    slack, _ = Destination.objects.get_or_create(
        name="Support leads on Slack (example, off)",
        defaults={"kind": "slack", "enabled": False,
                  "target": "https://hooks.slack.com/services/T000/B000/example"})
    for data in DEMO_RULES:
        rule_save(data=data, by="demo", destinations=[slack])
    # The demo's flags were raised before these rules existed: read them all once.
    FlagWatermark.objects.update_or_create(pk=1, defaults={"last_id": 0, "gaps": {}})
    alerts_evaluate()
    firing = list(Alert.objects.filter(state=Alert.State.FIRING).order_by("pk"))
    if firing:
        alert_acknowledge(alert=firing[0], by="demo", note="Looking into the queue.")
    if len(firing) > 1:
        alert_snooze(alert=firing[1], by="demo", until=timezone.now() + timedelta(hours=4),
                     note="Known issue with the night shift.")
    return DemoAlertsReport(rules=len(DEMO_RULES), alerts=Alert.objects.count())
