"""The alert changes of a pass, written in one set of bulk statements: the rules decide
(Firing: this group breaks the rule now; Clearing: the rule's other firing alerts resolve),
`alerts_write` folds the decisions into the firing alerts and writes them all at once:
one locking read of the firing alerts of every rule concerned, one INSERT of the new
alerts, one UPDATE of the changed ones, one INSERT each of history rows, flag matches and
outbox rows. Opening, grouping and resolving are written here only (lifecycle.alert_fire
and alert_resolve are this writer with one change)."""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction

from .models import Alert, AlertEvent, FlagMatch, Rule
from .outbox import outbox_events_write

KEEP_CONVERSATIONS = 200
_RETRIES = 3  # another evaluator opened one of the alerts meanwhile: read and fold again


@dataclass
class Firing:
    """One group of a rule breaks it now (`repeat`: a new occurrence, e.g. a new flag,
    worth a history line; False for a condition that still holds, which only refreshes
    the figures)."""

    rule: Rule
    group_key: str
    title: str
    summary: str
    at: datetime
    value: float | None = None
    threshold: float | None = None
    sample: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    conversation_ids: Iterable[int] = ()
    channel: str = ""
    repeat: bool = True
    flag_id: int | None = None  # the flag taken into the alert (a FlagMatch)
    # The summary of an alert holding several occurrences (flag rules).
    grouped_summary: Callable[[Alert], str] | None = None


@dataclass
class Clearing:
    """The rule's firing alerts whose group is not in `keep` resolve (None: all of them;
    `only`: just these alert ids)."""

    rule: Rule
    keep: set[str] | None
    note: str
    at: datetime
    only: set[int] | None = None


@dataclass
class Written:
    alerts: list[tuple[Alert, bool]]  # per Firing, in order: (alert, opened)
    resolved: list[Alert]


def figures(alert: Alert) -> dict[str, Any]:
    return {"value": alert.value, "threshold": alert.threshold, "sample": alert.sample,
            "summary": alert.summary}


def alert_resolved(alert: Alert, *, at: datetime, note: str) -> AlertEvent:
    """Mark a firing alert resolved (in memory); the history row to write with it."""
    alert.state = Alert.State.RESOLVED
    alert.resolved_at = at
    return AlertEvent(alert=alert, kind=AlertEvent.Kind.RESOLVED, at=at, note=note)


def _fold(alert: Alert, firing: Firing) -> AlertEvent | None:
    """A further occurrence into a firing alert; the history row it needs, if any."""
    alert.title, alert.summary = firing.title[:255], firing.summary
    alert.value, alert.threshold, alert.sample = firing.value, firing.threshold, firing.sample
    alert.evidence, alert.channel = firing.evidence or {}, firing.channel
    merged = list(dict.fromkeys([*alert.conversation_ids, *firing.conversation_ids]))
    alert.conversation_ids = merged[-KEEP_CONVERSATIONS:]
    alert.last_fired_at = max(alert.last_fired_at, firing.at)
    if not firing.repeat:
        return None
    alert.occurrences += 1
    event = AlertEvent(alert=alert, kind=AlertEvent.Kind.REPEATED, at=firing.at,
                       data=figures(alert))
    if firing.grouped_summary is not None:
        alert.summary = firing.grouped_summary(alert)
    return event


def _opened(firing: Firing) -> tuple[Alert, AlertEvent]:
    ids = list(dict.fromkeys(firing.conversation_ids))
    alert = Alert(rule=firing.rule, group_key=firing.group_key, severity=firing.rule.severity,
                  first_fired_at=firing.at, last_fired_at=firing.at, title=firing.title[:255],
                  summary=firing.summary, value=firing.value, threshold=firing.threshold,
                  sample=firing.sample, evidence=firing.evidence or {},
                  channel=firing.channel, conversation_ids=ids[-KEEP_CONVERSATIONS:])
    return alert, AlertEvent(alert=alert, kind=AlertEvent.Kind.FIRED, at=firing.at,
                             data=figures(alert))


# The columns a pass changes, with their types for the VALUES list.
_UPDATED = (("title", "varchar"), ("summary", "text"), ("value", "double precision"),
            ("threshold", "double precision"), ("sample", "integer"), ("evidence", "jsonb"),
            ("channel", "varchar"), ("conversation_ids", "jsonb"),
            ("last_fired_at", "timestamptz"), ("occurrences", "integer"), ("state", "varchar"),
            ("resolved_at", "timestamptz"))
_JSON = {"evidence", "conversation_ids"}


def _alerts_update(alerts: list[Alert]) -> None:
    """One UPDATE … FROM (VALUES …) of the changed alerts on PostgreSQL. (Django's
    bulk_update builds a CASE per column and row: with 130 alerts it was most of a pass's
    Python time; it stays the writer elsewhere.)"""
    if not alerts:
        return
    if connection.vendor != "postgresql":  # the portable writer (SQLite under `make run`)
        Alert.objects.bulk_update(alerts, [name for name, _ in _UPDATED])
        return
    table = connection.ops.quote_name(Alert._meta.db_table)
    row = "(%s::bigint, " + ", ".join(f"%s::{kind}" for _, kind in _UPDATED) + ")"
    params: list[Any] = []
    for alert in alerts:
        params.append(alert.pk)
        for name, _ in _UPDATED:
            value = getattr(alert, name)
            params.append(json.dumps(value, cls=DjangoJSONEncoder) if name in _JSON else value)
    names = [connection.ops.quote_name(name) for name, _ in _UPDATED]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS a SET {', '.join(f'{n} = v.{n}' for n in names)} "
            f"FROM (VALUES {', '.join([row] * len(alerts))}) AS v(id, {', '.join(names)}) "
            "WHERE a.id = v.id", params)


def _write_once(firings: list[Firing], clearings: list[Clearing]) -> Written:
    rule_ids = {f.rule.pk for f in firings} | {c.rule.pk for c in clearings}
    rules = {f.rule.pk: f.rule for f in firings} | {c.rule.pk: c.rule for c in clearings}
    current: dict[tuple[int, str], Alert] = {}
    for alert in (Alert.objects.select_for_update().filter(
            rule_id__in=rule_ids, state=Alert.State.FIRING).order_by("pk")):
        alert.rule = rules[alert.rule_id]
        current[(alert.rule_id, alert.group_key)] = alert
    opened: list[Alert] = []
    changed: dict[int, Alert] = {}
    events: list[AlertEvent] = []
    matches: list[tuple[Firing, Alert]] = []
    out: list[tuple[Alert, bool]] = []
    for firing in firings:
        key = (firing.rule.pk, firing.group_key)
        alert = current.get(key)
        if alert is None:
            alert, event = _opened(firing)
            current[key] = alert
            opened.append(alert)
            events.append(event)
            out.append((alert, True))
        else:
            event = _fold(alert, firing)
            if event is not None:
                events.append(event)
            if alert.pk is not None:
                changed[alert.pk] = alert
            out.append((alert, False))
        if firing.flag_id is not None:
            matches.append((firing, alert))
    resolved: list[Alert] = []
    by_rule: dict[int, list[tuple[str, Alert]]] = {}
    for (rule_id, group), alert in current.items():
        by_rule.setdefault(rule_id, []).append((group, alert))
    for clearing in clearings:
        for group, alert in by_rule.get(clearing.rule.pk, ()):
            if (alert.state != Alert.State.FIRING
                    or (clearing.keep is not None and group in clearing.keep)
                    or (clearing.only is not None and alert.pk not in clearing.only)):
                continue
            events.append(alert_resolved(alert, at=clearing.at, note=clearing.note))
            resolved.append(alert)
            if alert.pk is not None:
                changed[alert.pk] = alert
    Alert.objects.bulk_create(opened)
    _alerts_update(list(changed.values()))
    for event in events:  # the alerts opened above have their ids now
        event.alert = event.alert
    AlertEvent.objects.bulk_create(events)
    FlagMatch.objects.bulk_create([
        FlagMatch(rule=f.rule, flag_id=f.flag_id, alert=a, matched_at=f.at)
        for f, a in matches])
    outbox_events_write(events)
    return Written(out, resolved)


def alerts_write(firings: Iterable[Firing] = (), clearings: Iterable[Clearing] = ()) -> Written:
    """Write a pass's decisions in one transaction. When another evaluator opened one of
    the same alerts meanwhile (the one-firing-alert-per-rule-and-group constraint), read
    the firing alerts again and fold into them."""
    firings, clearings = list(firings), list(clearings)
    if not firings and not clearings:
        return Written([], [])
    for attempt in range(_RETRIES):
        try:
            with transaction.atomic():
                return _write_once(firings, clearings)
        except IntegrityError:
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")
