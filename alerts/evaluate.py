"""Metric, anomaly and release rules: read the window, decide per group, fire or resolve.
The deciding is pure (metric_breached, anomaly_decide); reading is metrics.py and
releases.py, through the pass's Reads (each window read once for every rule that asks);
a rule's decision is a Decision (firings and the clearing of its other alerts) that
changes.alerts_write writes, for one rule or for a whole pass at once."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from .changes import Clearing, Firing, Written, alerts_write
from .metrics import METRICS, Reads, Sample, first_upper, metric_format
from .models import Rule
from .releases import release_rule_decide
from .stats import robust_z

HISTORY_WEEKS = 8


@dataclass
class Decision:
    """What one rule decided in a pass: the groups that break it, and the clearing of its
    other firing alerts."""

    firings: list[Firing]
    clearing: Clearing


def metric_breached(rule: Rule, sample: Sample) -> bool:
    """Pure: over (or under) the threshold, with at least the minimum sample."""
    if rule.threshold is None or sample.sample < max(rule.min_sample, 1):
        return False
    if rule.comparison == Rule.Comparison.BELOW:
        return sample.value < rule.threshold
    return sample.value > rule.threshold


def _window_words(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440} day" + ("s" if minutes > 1440 else "")
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def _group_words(rule: Rule, key: str) -> str:
    if not rule.group_by:
        return ""
    name = {"channel": "on", "queue": "in queue", "model": "for model",
            "prompt_version": "for prompt version"}[rule.group_by]
    return f" {name} {key or '(none)'}"


def metric_rule_decide(rule: Rule, *, now: datetime, reads: Reads) -> Decision:
    since = now - timedelta(minutes=rule.window_minutes)
    groups = reads.metric(name=rule.metric, since=since, until=now, group_by=rule.group_by)
    metric = METRICS[rule.metric]
    firings = []
    for key, sample in groups.items():
        if not metric_breached(rule, sample):
            continue
        firings.append(Firing(
            rule=rule, group_key=key, at=now, repeat=False,
            title=f"{first_upper(metric.label)}{_group_words(rule, key)} "
                  f"{rule.comparison} {metric_format(rule.metric, rule.threshold)}",
            summary=(f"{first_upper(metric.label)}{_group_words(rule, key)} was "
                     f"{metric_format(rule.metric, sample.value)} over the last "
                     f"{_window_words(rule.window_minutes)} ({sample.sample} in the sample), "
                     f"{rule.comparison} the limit of "
                     f"{metric_format(rule.metric, rule.threshold)}."),
            value=sample.value, threshold=rule.threshold, sample=sample.sample,
            conversation_ids=sample.conversation_ids,
            channel=key if rule.group_by == "channel" else "",
            evidence={"since": since.isoformat(), "until": now.isoformat()}))
    return Decision(firings, Clearing(
        rule=rule, keep={f.group_key for f in firings}, at=now,
        note="The metric is back within its limit (or has too small a sample to judge)."))


@dataclass(frozen=True)
class AnomalyVerdict:
    fires: bool
    z: float | None
    baseline: float | None
    weeks: int


def anomaly_decide(rule: Rule, value: Sample, history: list[float], *,
                   additive: bool) -> AnomalyVerdict:
    """Pure: the value against the same hour of week in past weeks (median and MAD)."""
    if len(history) < rule.min_history_weeks or value.sample < max(rule.min_sample, 1):
        return AnomalyVerdict(False, None, None, len(history))
    z, centre, _ = robust_z(value.value, history, floor=1.0 if additive else 0.5)
    below = rule.comparison == Rule.Comparison.BELOW
    worse = z <= -rule.anomaly_z if below else z >= rule.anomaly_z
    return AnomalyVerdict(worse, z, centre, len(history))


def anomaly_rule_decide(rule: Rule, *, now: datetime, reads: Reads) -> Decision:
    """The window ending now against the same window 1..8 weeks ago (a week that had no
    data at all is not part of the history)."""
    window = timedelta(minutes=rule.window_minutes)
    metric = METRICS[rule.metric]
    current = reads.metric(name=rule.metric, since=now - window, until=now,
                           group_by=rule.group_by)
    past: dict[str, list[float]] = {}
    for week in range(1, HISTORY_WEEKS + 1):
        end = now - timedelta(weeks=week)
        read = reads.metric(name=rule.metric, since=end - window, until=end,
                            group_by=rule.group_by)
        for key in set(read) | set(current):
            sample = read.get(key)
            if sample is not None:
                past.setdefault(key, []).append(sample.value)
            elif metric.additive and read:  # a count: a quiet week counts as zero
                past.setdefault(key, []).append(0.0)
    firings = []
    local = timezone.localtime(now)
    for key, sample in current.items():
        verdict = anomaly_decide(rule, sample, past.get(key, []), additive=metric.additive)
        if not verdict.fires:
            continue
        times = (f"{sample.value / verdict.baseline:.1f} times"
                 if verdict.baseline and sample.value > verdict.baseline else "")
        normal = f"a normal {local:%A} at {local:%H}:00"
        firings.append(Firing(
            rule=rule, group_key=key, at=now, repeat=False,
            title=f"Unusual {metric.label}{_group_words(rule, key)}",
            summary=(f"{first_upper(metric.label)}{_group_words(rule, key)} was "
                     f"{metric_format(rule.metric, sample.value)} over the last "
                     f"{_window_words(rule.window_minutes)}"
                     + (f", {times} what is usual" if times else "")
                     + f" (median of {normal}: {metric_format(rule.metric, verdict.baseline)} "
                       f"over {verdict.weeks} weeks; robust z {verdict.z:+.1f})."),
            value=sample.value, threshold=verdict.baseline, sample=sample.sample,
            conversation_ids=sample.conversation_ids,
            channel=key if rule.group_by == "channel" else "",
            evidence={"z": verdict.z, "baseline_median": verdict.baseline,
                      "history": past.get(key, [])}))
    return Decision(firings, Clearing(rule=rule, keep={f.group_key for f in firings}, at=now,
                                      note="Back within its usual range."))


def rule_decide(rule: Rule, *, now: datetime, reads: Reads) -> Decision | None:
    if rule.kind == Rule.Kind.METRIC:
        return metric_rule_decide(rule, now=now, reads=reads)
    if rule.kind == Rule.Kind.ANOMALY:
        return anomaly_rule_decide(rule, now=now, reads=reads)
    if rule.kind == Rule.Kind.RELEASE:
        firings, clearing = release_rule_decide(rule, now=now, reads=reads)
        return Decision(firings, clearing)
    return None


def decisions_write(decisions: list[Decision]) -> Written:
    return alerts_write([f for d in decisions for f in d.firings],
                        [d.clearing for d in decisions])


def rule_evaluate(rule: Rule, *, now: datetime | None = None) -> None:
    """One rule on its own (the pass evaluates them all at once: services.alerts_evaluate)."""
    decision = rule_decide(rule, now=now or timezone.now(), reads=Reads())
    if decision is not None:
        decisions_write([decision])
