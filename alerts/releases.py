"""Release rules: when a new AI model or prompt version appears, compare it with the one
before on the rule's metric once both have `min_sample` conversations in the window, with
a significance test and its effect size. One alert per rule and release pair; it resolves
when the difference is no longer significant or a newer release takes over."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Min, Sum

from conversations.models import AIStep, Outcome
from handoffs.models import Handoff
from scoring.models import Score

from .changes import Clearing, Firing
from .metrics import Reads, first_upper
from .models import Rule
from .stats import Comparison, mann_whitney, two_proportions

# metric -> (binary?, higher is worse?, words)
RELEASE_METRICS: dict[str, tuple[bool, bool, str]] = {
    "handoff_rate": (True, True, "handoff rate"),
    "dropped_rate": (True, True, "dropped rate"),
    "csat": (False, False, "CSAT"),
    "tone_mean": (False, False, "brand tone"),
    "cost_per_conversation": (False, True, "AI cost per conversation"),
}


@dataclass(frozen=True)
class Release:
    field: str  # "model" | "prompt_version"
    newer: str
    older: str


def releases_latest(*, field: str, since: datetime) -> Release | None:
    """The two most recent releases (by first AI step) seen since `since`."""
    column = "request_model" if field == "model" else "prompt_version"
    firsts = (AIStep.objects.filter(occurred_at__gte=since).exclude(**{column: ""})
              .values(column).annotate(first=Min("occurred_at")).order_by("-first")[:2])
    rows = [r[column] for r in firsts]
    return Release(field, rows[0], rows[1]) if len(rows) == 2 else None


def _conversations(release: Release, value: str, since: datetime) -> set[int]:
    column = "request_model" if release.field == "model" else "prompt_version"
    return set(AIStep.objects.filter(occurred_at__gte=since, **{column: value})
               .values_list("conversation_id", flat=True).distinct())


def _values(metric: str, ids: set[int]) -> list[float]:
    """One value per conversation (binary metrics: 0/1)."""
    if metric == "handoff_rate":
        handed = set(Handoff.objects.filter(conversation_id__in=ids)
                     .values_list("conversation_id", flat=True))
        return [1.0 if c in handed else 0.0 for c in ids]
    if metric == "dropped_rate":
        rows: dict[int, bool] = defaultdict(bool)
        for cid, dropped in Handoff.objects.filter(conversation_id__in=ids).values_list(
                "conversation_id", "dropped_at"):
            rows[cid] |= dropped is not None
        return [1.0 if d else 0.0 for d in rows.values()]
    if metric == "csat":
        return [float(v) for v in Outcome.objects.filter(
            conversation_id__in=ids, csat__isnull=False).values_list("csat", flat=True)]
    if metric == "tone_mean":
        per: dict[int, list[float]] = defaultdict(list)
        for cid, v in Score.objects.filter(conversation_id__in=ids, name="brand_tone",
                                           source=Score.Source.AUTO).values_list(
                "conversation_id", "value"):
            per[cid].append(100 * v)
        return [sum(v) / len(v) for v in per.values()]
    if metric == "cost_per_conversation":
        return [float(v or 0) for v in AIStep.objects.filter(conversation_id__in=ids)
                .values("conversation_id").annotate(c=Sum("cost")).values_list("c", flat=True)]
    raise ValueError(f"Release rules cannot compare {metric}.")


def release_compare(metric: str, before: list[float], after: list[float]) -> Comparison:
    binary = RELEASE_METRICS[metric][0]
    if binary:
        return two_proportions(int(sum(before)), len(before), int(sum(after)), len(after))
    return mann_whitney(before, after)


def release_sentence(metric: str, release: Release, cmp: Comparison, n_before: int,
                     n_after: int) -> str:
    binary, _, words = RELEASE_METRICS[metric]
    what = "AI model" if release.field == "model" else "prompt version"
    if binary:
        change = (f"{cmp.before:.1f}% to {cmp.after:.1f}% "
                  f"({cmp.after - cmp.before:+.1f} points)")
    else:
        change = f"a median of {cmp.before:.2f} to {cmp.after:.2f}"
    return (f"Since {what} {release.newer} replaced {release.older}, the {words} went from "
            f"{change}: {cmp.test}, p = {cmp.p_value:.3g}, {cmp.effect_name} = "
            f"{cmp.effect:+.2f} ({n_before} vs {n_after} conversations).")


def release_rule_decide(rule: Rule, *, now: datetime,
                        reads: Reads) -> tuple[list[Firing], Clearing]:
    """The rule's firing (none or one) and the clearing of its other alerts. The reads are
    shared by the pass's rules of the same window and metric."""
    since = now - timedelta(minutes=rule.window_minutes)
    field = rule.group_by if rule.group_by in ("model", "prompt_version") else "prompt_version"
    release = reads.shared(("release", field, since),
                           lambda: releases_latest(field=field, since=since))
    firings: list[Firing] = []
    if release is not None:
        before = reads.shared(
            ("release-values", rule.metric, release, "older", since),
            lambda: _values(rule.metric, _conversations(release, release.older, since)))
        after = reads.shared(
            ("release-values", rule.metric, release, "newer", since),
            lambda: _values(rule.metric, _conversations(release, release.newer, since)))
        if min(len(before), len(after)) >= max(rule.min_sample, 2):
            cmp = release_compare(rule.metric, before, after)
            worse_up = RELEASE_METRICS[rule.metric][1]
            worse = cmp.after > cmp.before if worse_up else cmp.after < cmp.before
            if cmp.p_value < rule.alpha and worse:
                firings.append(Firing(
                    rule=rule, group_key=f"{field}:{release.older}->{release.newer}", at=now,
                    repeat=False,
                    title=f"{first_upper(RELEASE_METRICS[rule.metric][2])} worse after "
                          f"{release.newer}",
                    summary=release_sentence(rule.metric, release, cmp, len(before), len(after)),
                    value=cmp.after, threshold=cmp.before, sample=len(after),
                    evidence={"test": cmp.test, "p_value": cmp.p_value, "effect": cmp.effect,
                              "effect_name": cmp.effect_name, "newer": release.newer,
                              "older": release.older, "n_before": len(before),
                              "n_after": len(after)}))
    return firings, Clearing(rule=rule, keep={f.group_key for f in firings}, at=now,
                             note="The release difference is no longer significant.")
