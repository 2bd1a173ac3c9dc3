"""Flag rules: new flags (found by a scan of Flag ids past a watermark, so neither
conversations nor handoffs know this app exists) matched against each enabled flag rule;
a match fires (or repeats into) the rule's alert for its group. A rule with `open_minutes`
takes flags still open that long after they rose. A flag alert resolves once none of its
flags is still active."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conversations.flag_text import drop_reason_label
from conversations.models import FLAG_SEVERITY_RANK, Channel, Flag
from handoffs.models import Handoff
from scoring.services import conversation_brands_resolve

from .changes import Clearing, Firing, alerts_write
from .conf import alerts_setting
from .models import Alert, FlagMatch, FlagWatermark, Rule

SCAN_LIMIT = 5000


@dataclass(frozen=True)
class FlagFacts:
    """What a flag rule can ask about a flag."""

    flag_id: int
    conversation_id: int
    kind: str
    severity: str
    channel: str
    queue: str
    brand: str
    raised_at: datetime
    evidence: dict[str, Any]


def flag_rule_matches(rule: Rule, facts: FlagFacts) -> bool:
    """Pure: does this flag answer the rule's filters (an empty list accepts anything)?"""
    if rule.flag_kinds and facts.kind not in rule.flag_kinds:
        return False
    if FLAG_SEVERITY_RANK.get(facts.severity, 0) < FLAG_SEVERITY_RANK.get(rule.min_severity, 0):
        return False
    for wanted, value in ((rule.channels, facts.channel), (rule.queues, facts.queue),
                          (rule.brands, facts.brand)):
        if wanted and value not in wanted:
            return False
    return True


def flag_group_key(rule: Rule, facts: FlagFacts) -> str:
    return {"channel": facts.channel, "queue": facts.queue, "kind": facts.kind,
            "brand": facts.brand, "conversation": str(facts.conversation_id)}.get(
        rule.group_by, "")


def flag_sentence(facts: FlagFacts) -> str:
    """One line about a flag from its safe figures (never the matched text)."""
    label = Flag.Kind(facts.kind).label if facts.kind in Flag.Kind.values else facts.kind
    where = Channel(facts.channel).label if facts.channel in Channel.values else facts.channel
    parts = [f"{label} on {where}"]
    if facts.queue:
        parts.append(f"in the {facts.queue} queue")
    parts.append(f"(conversation #{facts.conversation_id}, {facts.severity} severity")
    waited = facts.evidence.get("waited_seconds")
    if isinstance(waited, int | float) and waited > 0:
        parts[-1] += f", waited {_duration(waited)}"
    reasons = facts.evidence.get("reasons") or facts.evidence.get("dropped_reasons")
    if isinstance(reasons, list) and reasons and all(isinstance(r, str) for r in reasons):
        parts[-1] += f": {'; '.join(_lower_first(drop_reason_label(r)) for r in reasons[:3])}"
    return " ".join(parts) + ")."


def _lower_first(label: str) -> str:
    """`Closed before ...` -> `closed before ...`; `AI kept ...`, `WhatsApp ...` stay."""
    first = label.split(" ", 1)[0]
    return label if any(c.isupper() for c in first[1:]) else label[:1].lower() + label[1:]


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def flags_facts(flags: Iterable[Flag], *, need_brand: bool) -> list[FlagFacts]:
    flags = list(flags)
    handoff_ids = [f.subject_id for f in flags if f.subject_type == Flag.SubjectType.HANDOFF]
    queues = dict(Handoff.objects.filter(pk__in=handoff_ids).values_list("pk", "queue"))
    brands = ({cid: b.name for cid, b in conversation_brands_resolve(
        conversations={f.conversation for f in flags}).items()} if need_brand and flags else {})
    return [FlagFacts(
        flag_id=f.pk, conversation_id=f.conversation_id, kind=f.kind, severity=f.severity,
        channel=f.conversation.channel,
        queue=(queues.get(f.subject_id, "") if f.subject_type == Flag.SubjectType.HANDOFF
               else str(f.evidence.get("queue") or "")),
        brand=brands.get(f.conversation_id, ""), raised_at=f.raised_at,
        evidence=f.evidence if isinstance(f.evidence, dict) else {}) for f in flags]


def _firing(rule: Rule, facts: FlagFacts, *, at: datetime) -> Firing:
    sentence = flag_sentence(facts)
    return Firing(
        rule=rule, group_key=flag_group_key(rule, facts), at=at, title=f"{rule.name}",
        summary=sentence, conversation_ids=[facts.conversation_id], channel=facts.channel,
        evidence={"flag_id": facts.flag_id, "kind": facts.kind}, flag_id=facts.flag_id,
        grouped_summary=lambda alert: (
            f"{alert.occurrences} matching flags since "
            f"{timezone.localtime(alert.first_fired_at):%H:%M %b %d}; latest: {sentence}"))


def flags_scan(*, now: datetime | None = None) -> int:
    """Read the flags raised since the last scan and fire the immediate flag rules. Returns
    how many flags were read. The watermark moves in the same transaction as the alerts."""
    now = now or timezone.now()
    rules = [r for r in Rule.objects.filter(kind=Rule.Kind.FLAG, enabled=True)
             if not r.open_minutes]
    with transaction.atomic():
        mark, _ = FlagWatermark.objects.select_for_update().get_or_create(pk=1)
        gap_ids = [int(i) for i in mark.gaps]
        flags = list(Flag.objects.select_related("conversation")
                     .filter(pk__gt=mark.last_id).order_by("pk")[:SCAN_LIMIT])
        flags += list(Flag.objects.select_related("conversation").filter(pk__in=gap_ids))
        seen = {f.pk for f in flags}
        gaps = {k: v for k, v in mark.gaps.items() if int(k) not in seen}
        top = max((f.pk for f in flags if f.pk > mark.last_id), default=mark.last_id)
        for missing in set(range(mark.last_id + 1, top)) - seen:
            gaps[str(missing)] = now.isoformat()
        cutoff = now - timedelta(minutes=float(alerts_setting("ALERTS_FLAG_GAP_MINUTES")))
        mark.gaps = {k: v for k, v in gaps.items()
                     if (parse_datetime(v) or now) > cutoff}
        if len(mark.gaps) > 10000:  # a huge rollback: keep the newest
            mark.gaps = dict(sorted(mark.gaps.items(), key=lambda kv: int(kv[0]))[-10000:])
        mark.last_id = top
        mark.save()
        if rules and flags:
            already = set(FlagMatch.objects.filter(flag_id__in=seen).values_list(
                "rule_id", "flag_id"))
            facts = flags_facts(flags, need_brand=any(r.brands for r in rules))
            alerts_write([_firing(rule, fact, at=now) for rule in rules for fact in facts
                          if (rule.pk, fact.flag_id) not in already
                          and flag_rule_matches(rule, fact)])
    return len(flags)


def flags_open_too_long(*, now: datetime | None = None) -> int:
    """Rules with `open_minutes`: flags still open that long after they rose (an indexed
    read of one day of each rule's kinds)."""
    now = now or timezone.now()
    firings: list[Firing] = []
    for rule in Rule.objects.filter(kind=Rule.Kind.FLAG, enabled=True, open_minutes__gt=0):
        due = now - timedelta(minutes=rule.open_minutes)
        candidates = Flag.objects.select_related("conversation").filter(
            status=Flag.Status.OPEN, raised_at__lte=due, raised_at__gt=due - timedelta(days=1)
        ).exclude(Exists(FlagMatch.objects.filter(rule=rule, flag=OuterRef("pk"))))
        if rule.flag_kinds:
            candidates = candidates.filter(kind__in=rule.flag_kinds)
        firings += [_firing(rule, fact, at=now) for fact in flags_facts(
            candidates[:SCAN_LIMIT], need_brand=bool(rule.brands))
            if flag_rule_matches(rule, fact)]
    alerts_write(firings)
    return len(firings)


def flag_alerts_resolve(*, now: datetime | None = None) -> int:
    """Resolve the firing flag alerts none of whose flags is still active (a rule with
    `open_minutes` counts only open flags): one read of the firing flag alerts, one of the
    statuses of their flags, one write."""
    now = now or timezone.now()
    firing = list(Alert.objects.select_related("rule").filter(
        state=Alert.State.FIRING, rule__kind=Rule.Kind.FLAG))
    if not firing:
        return 0
    statuses: dict[int, set[str]] = {}
    for alert_id, status in (FlagMatch.objects.filter(alert_id__in=[a.pk for a in firing])
                             .values_list("alert_id", "flag__status").distinct()):
        statuses.setdefault(alert_id, set()).add(status)
    done: dict[int, set[int]] = {}
    rules: dict[int, Rule] = {}
    for alert in firing:
        active = ({Flag.Status.OPEN.value} if alert.rule.open_minutes
                  else {s.value for s in Flag.ACTIVE_STATUSES})
        if not statuses.get(alert.pk, set()) & active:
            done.setdefault(alert.rule_id, set()).add(alert.pk)
            rules[alert.rule_id] = alert.rule
    written = alerts_write(clearings=[
        Clearing(rule=rules[rule_id], keep=None, only=ids, at=now,
                 note="Every flag behind it was closed.") for rule_id, ids in done.items()])
    return len(written.resolved)
