"""The evaluation pass (Celery beat, every minute): flag rules from the new flags, then
every metric, anomaly and release rule. Each rule's failure is logged and kept to itself."""

import logging
from datetime import datetime

from django.utils import timezone

from .evaluate import rule_evaluate
from .flag_rules import flag_alerts_resolve, flags_open_too_long, flags_scan
from .models import Rule

log = logging.getLogger(__name__)


def alerts_evaluate_flags(*, now: datetime | None = None) -> int:
    """The flag part (also run on its own every 15 s, so a dropped handoff leaves fast)."""
    now = now or timezone.now()
    read = flags_scan(now=now)
    flags_open_too_long(now=now)
    flag_alerts_resolve(now=now)
    return read


def alerts_evaluate(*, now: datetime | None = None) -> int:
    """One pass over every enabled rule; returns how many rules were evaluated."""
    now = now or timezone.now()
    alerts_evaluate_flags(now=now)
    rules = list(Rule.objects.filter(enabled=True).exclude(kind=Rule.Kind.FLAG))
    for rule in rules:
        try:
            rule_evaluate(rule, now=now)
        except Exception:  # noqa: BLE001 — one broken rule must not stop the others
            log.exception("alert rule %s (%s) failed", rule.pk, rule.name)
    return len(rules)
