"""The metrics rules watch, each one indexed read over a time window, grouped by channel,
queue, AI model or prompt version. A metric answers {group: Sample}; `sample` is what the
rule's minimum sample size is compared with (conversations, handoffs, ratings, scores or,
for counts, the count itself)."""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy
from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from conversations.models import AIStep, Conversation, Flag, Outcome
from handoffs.models import Handoff, Wait
from scoring.models import Score


@dataclass
class Sample:
    value: float
    sample: int
    conversation_ids: list[int] = field(default_factory=list)


Groups = dict[str, Sample]
Reader = Callable[[datetime, datetime, str], Groups]


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # "dropped rate"
    unit: str  # "%", " min", "", " USD"
    groups: tuple[str, ...]  # what it can be grouped by besides "" (overall)
    read: Reader
    # Anomaly rules compare counts or rates hour by hour; True: per-hour sums make sense.
    additive: bool = False


def _key(group_by: str) -> str | None:
    return {"channel": "channel", "queue": "queue", "model": "model",
            "prompt_version": "prompt_version"}.get(group_by)


def _model_of(conversation_ids: set[int]) -> dict[int, tuple[str, str]]:
    """Each conversation's AI model and prompt version: its latest AI step's."""
    out: dict[int, tuple[str, str]] = {}
    for cid, request, response, version in (
            AIStep.objects.filter(conversation_id__in=conversation_ids)
            .order_by("conversation_id", "occurred_at")
            .values_list("conversation_id", "request_model", "response_model",
                         "prompt_version")):
        out[cid] = (response or request, version)
    return out


def _group_rows(rows: list[tuple[int, str, str, float]], group_by: str) -> dict[str, list]:
    """rows: (conversation_id, channel, queue, value) -> {group: [(cid, value)]}."""
    by_model = (_model_of({r[0] for r in rows}) if group_by in ("model", "prompt_version")
                else {})
    groups: dict[str, list] = defaultdict(list)
    for cid, channel, queue, value in rows:
        if group_by == "channel":
            key = channel
        elif group_by == "queue":
            key = queue
        elif group_by == "model":
            key = by_model.get(cid, ("", ""))[0]
        elif group_by == "prompt_version":
            key = by_model.get(cid, ("", ""))[1]
        else:
            key = ""
        groups[key].append((cid, value))
    return groups


def _rate(rows: list[tuple[int, str, str, float]], group_by: str) -> Groups:
    return {key: Sample(100.0 * sum(v for _, v in items) / len(items), len(items),
                        [cid for cid, v in items if v][-200:])
            for key, items in _group_rows(rows, group_by).items()}


def _mean(rows: list[tuple[int, str, str, float]], group_by: str, scale: float = 1.0) -> Groups:
    return {key: Sample(scale * sum(v for _, v in items) / len(items), len(items),
                        [cid for cid, _ in items][-200:])
            for key, items in _group_rows(rows, group_by).items()}


def _count(rows: list[tuple[int, str, str, float]], group_by: str) -> Groups:
    return {key: Sample(float(len(items)), len(items), [cid for cid, _ in items][-200:])
            for key, items in _group_rows(rows, group_by).items()}


def handoff_rate(since: datetime, until: datetime, group_by: str) -> Groups:
    # The window's conversations, then their handoffs by conversation id (an index probe
    # each): a join with COUNT, or EXISTS, makes PostgreSQL scan every handoff.
    rows = list(Conversation.objects.filter(started_at__gte=since, started_at__lt=until)
                .values_list("pk", "channel"))
    handed_off = set(Handoff.objects.filter(conversation_id__in=[pk for pk, _ in rows])
                     .values_list("conversation_id", flat=True))
    return _rate([(cid, ch, "", 1.0 if cid in handed_off else 0.0) for cid, ch in rows],
                 group_by)


def _handoffs(since: datetime, until: datetime):
    return Handoff.objects.filter(requested_at__gte=since, requested_at__lt=until)


def dropped_rate(since: datetime, until: datetime, group_by: str) -> Groups:
    rows = _handoffs(since, until).values_list("conversation_id", "channel", "queue",
                                               "dropped_at")
    return _rate([(c, ch, q, 0.0 if d is None else 1.0) for c, ch, q, d in rows], group_by)


def handoffs_count(since: datetime, until: datetime, group_by: str) -> Groups:
    rows = _handoffs(since, until).values_list("conversation_id", "channel", "queue")
    return _count([(c, ch, q, 1.0) for c, ch, q in rows], group_by)


def stalled_count(since: datetime, until: datetime, group_by: str) -> Groups:
    rows = _handoffs(since, until).filter(stalled_count__gt=0).values_list(
        "conversation_id", "channel", "queue")
    return _count([(c, ch, q, 1.0) for c, ch, q in rows], group_by)


def sla_met(since: datetime, until: datetime, group_by: str) -> Groups:
    """Share of the waits with a limit, started in the window, that met it (a wait still
    open past its deadline has missed it)."""
    rows = []
    for cid, ch, q, met, ended, deadline in Wait.objects.filter(
            handoff__requested_at__gte=since, handoff__requested_at__lt=until,
            allowed_seconds__isnull=False).values_list(
            "handoff__conversation_id", "handoff__channel", "handoff__queue", "met",
            "ended_at", "deadline_at"):
        if met is None and (ended is not None or deadline is None or deadline > until):
            continue  # not decided yet
        rows.append((cid, ch, q, 1.0 if met else 0.0))
    out = _rate(rows, group_by)
    for s in out.values():  # the conversations behind it are the missed ones
        s.conversation_ids = [c for c, _, _, v in rows if not v][-200:]
    return out


def time_to_human_p90(since: datetime, until: datetime, group_by: str) -> Groups:
    rows = list(Handoff.objects.filter(engaged_at__gte=since, engaged_at__lt=until,
                                       time_to_human__isnull=False)
                .values_list("conversation_id", "channel", "queue", "time_to_human"))
    out = {}
    for key, items in _group_rows(rows, group_by).items():
        values = numpy.asarray([v for _, v in items], dtype=float)
        out[key] = Sample(float(numpy.percentile(values, 90)) / 60, len(items),
                          [c for c, _ in sorted(items, key=lambda i: -i[1])][:200])
    return out


def csat(since: datetime, until: datetime, group_by: str) -> Groups:
    rows = Outcome.objects.filter(occurred_at__gte=since, occurred_at__lt=until,
                                  csat__isnull=False).values_list(
        "conversation_id", "conversation__channel", "csat")
    return _mean([(c, ch, "", float(v)) for c, ch, v in rows], group_by)


def _ai_per_conversation(since: datetime, until: datetime, group_by: str,
                         value: Callable) -> Groups:
    rows = (AIStep.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
            .values("conversation_id", "conversation__channel")
            .annotate(v=value()).values_list("conversation_id", "conversation__channel", "v"))
    return _mean([(c, ch, "", float(v or 0)) for c, ch, v in rows], group_by)


def cost_per_conversation(since: datetime, until: datetime, group_by: str) -> Groups:
    return _ai_per_conversation(since, until, group_by, lambda: Sum("cost"))


def tokens_per_conversation(since: datetime, until: datetime, group_by: str) -> Groups:
    return _ai_per_conversation(
        since, until, group_by,
        lambda: Sum(Coalesce(F("input_tokens"), 0) + Coalesce(F("output_tokens"), 0)))


def tone_mean(since: datetime, until: datetime, group_by: str) -> Groups:
    rows = Score.objects.filter(name="brand_tone", source=Score.Source.AUTO,
                                occurred_at__gte=since, occurred_at__lt=until).values_list(
        "conversation_id", "channel", "value")
    return _mean([(c, ch, "", v) for c, ch, v in rows], group_by, scale=100.0)


def _flag_count(kind: str) -> Reader:
    def read(since: datetime, until: datetime, group_by: str) -> Groups:
        rows = Flag.objects.filter(kind=kind, raised_at__gte=since,
                                   raised_at__lt=until).values_list(
            "conversation_id", "conversation__channel")
        return _count([(c, ch, "", 1.0) for c, ch in rows], group_by)
    return read



_ALL = ("channel", "queue", "model", "prompt_version")
_CONV = ("channel", "model", "prompt_version")
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("sla_met", "SLA met", "%", _ALL, sla_met),
    Metric("dropped_rate", "dropped rate", "%", _ALL, dropped_rate),
    Metric("handoff_rate", "handoff rate", "%", _CONV, handoff_rate),
    Metric("handoffs", "handoffs", "", _ALL, handoffs_count, additive=True),
    Metric("time_to_human_p90", "time to human (p90)", " min", _ALL, time_to_human_p90),
    Metric("stalled_count", "stalled handoffs", "", _ALL, stalled_count, additive=True),
    Metric("csat", "CSAT", "", _CONV, csat),
    Metric("cost_per_conversation", "AI cost per conversation", " USD", _CONV,
           cost_per_conversation),
    Metric("tokens_per_conversation", "tokens per conversation", "", _CONV,
           tokens_per_conversation),
    Metric("tone_mean", "brand-tone mean", "", _CONV, tone_mean),
    Metric("reasoning_leak_count", "reasoning leaks", "", _CONV,
           _flag_count(Flag.Kind.REASONING_LEAK), additive=True),
    Metric("pii_leak_count", "personal-data leaks", "", _CONV,
           _flag_count(Flag.Kind.PII_LEAK), additive=True),
)}


def metric_read(*, name: str, since: datetime, until: datetime, group_by: str = "") -> Groups:
    metric = METRICS[name]
    if group_by and group_by not in metric.groups:
        raise ValueError(f"{metric.label} cannot be grouped by {group_by}.")
    return metric.read(since, until, group_by)


class Reads:
    """One evaluation pass's reads: each (metric, window, grouping) is read once and shared
    by every rule that asks for it (rules are many, distinct windows few). Also memoizes
    other reads of the pass by key (`shared`)."""

    def __init__(self) -> None:
        self._memo: dict[tuple, Any] = {}
        self.reads = 0  # how many reads were actually made

    def shared(self, key: tuple, load: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = load()
            self.reads += 1
        return self._memo[key]

    def metric(self, *, name: str, since: datetime, until: datetime,
               group_by: str = "") -> Groups:
        return self.shared(("metric", name, since, until, group_by), lambda: metric_read(
            name=name, since=since, until=until, group_by=group_by))


def metric_format(name: str, value: float) -> str:
    metric = METRICS[name]
    if metric.unit == "%":
        return f"{value:.1f}%"
    if metric.unit == " USD":
        return f"${value:.4f}" if value < 1 else f"${value:.2f}"
    if metric.additive:
        return f"{value:.0f}"
    return f"{value:.1f}{metric.unit}"


def first_upper(text: str) -> str:
    """"SLA met" stays "SLA met" (str.capitalize would write "Sla met")."""
    return text[:1].upper() + text[1:]
