"""The evaluation pass (Celery beat, every minute): flag rules from the new flags, then
every metric, anomaly and release rule, batched: the rules decide over reads shared by
every rule of the same metric and window (metrics.Reads), then all their alert changes are
written at once (changes.alerts_write). Each rule's failure is logged and kept to itself:
a rule whose decision fails is left out; if the batched write fails, each rule's decision
is written on its own."""

import logging
from datetime import datetime

from django.utils import timezone

from .evaluate import Decision, decisions_write, rule_decide
from .flag_rules import flag_alerts_resolve, flags_open_too_long, flags_scan
from .metrics import Reads
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
    rules = list(Rule.objects.filter(enabled=True).exclude(kind=Rule.Kind.FLAG).order_by("pk"))
    reads = Reads()
    decisions: list[Decision] = []
    for rule in rules:
        try:
            decision = rule_decide(rule, now=now, reads=reads)
        except Exception:  # noqa: BLE001 — one broken rule must not stop the others
            log.exception("alert rule %s (%s) failed", rule.pk, rule.name)
            continue
        if decision is not None:
            decisions.append(decision)
    try:
        decisions_write(decisions)
    except Exception:  # noqa: BLE001 — write what can be written, rule by rule
        log.exception("the batched alert write failed; writing rule by rule")
        for decision in decisions:
            try:
                decisions_write([decision])
            except Exception:  # noqa: BLE001
                rule = decision.clearing.rule
                log.exception("alert rule %s (%s) failed", rule.pk, rule.name)
    return len(rules)
