"""Builds the outcome reports' daily rollup (audit.OutcomeDaily) for one day: the
conversations started that day, annotated with audit.outcome_rules' per-conversation facts,
added up per channel and per group (handoff outcome, AI model, prompt version, agent,
queue, team). Called by audit.rollups.rollup_day_build, so it is rebuilt whenever the dashboards'
day is (the same marks: ingest, the handoff machine, the sweep, scoring of customer
messages, QA reviews).

A fixed number of queries per day (eight, plus one for repeat contacts), whatever the
volume. Repeat contact looks forward (did the customer come back within N days?), so a
conversation started today can change a figure of an earlier day: `outcome_day_rows`
returns those earlier days and the caller marks them.
"""

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy
from django.utils import timezone

from conversations.models import AIStep, AuthorKind, Conversation, Outcome
from handoffs.models import Handoff, Wait
from scoring.models import Score
from scoring.qa_counted import reviews_counted

from .outcome_models import OutcomeDaily
from .outcome_rules import (
    DETRACTOR_MAX,
    PROMOTER_MIN,
    conversation_agents,
    handoff_bucket,
    outcome_annotate,
    repeat_days,
)

FLOATS = "<f8"
WORST_N = 10
# The worst-case lists: name -> (what is ranked, highest first?)
WORST = {"expensive": True, "slowest": True, "lowest_csat": False, "longest_wait": True}
KINDS = ("channel", "bucket", "model", "prompt", "agent", "queue", "team")


@dataclass
class _Conv:
    pk: int
    channel: str
    first_response: float | None
    first_human: float | None
    resolution_time: float | None
    resolved: bool
    contained: bool
    escalated: bool
    repeat: bool
    converted: bool
    csat: int | None
    nps: int | None
    bucket: str
    cost: Decimal | None = None
    models: set[str] = field(default_factory=set)
    prompts: set[str] = field(default_factory=set)
    revenue: dict[str, Decimal] = field(default_factory=dict)
    warmth: tuple[float, float] | None = None
    handoffs: list[tuple[Any, ...]] = field(default_factory=list)
    agents: dict[str, str] = field(default_factory=dict)  # id -> name (outcome_rules)
    reviews: list[tuple[float | None, bool]] = field(default_factory=list)


@dataclass
class _Acc:
    label: str = ""
    conversations: int = 0
    first_response: list[float] = field(default_factory=list)
    first_human: list[float] = field(default_factory=list)
    resolution_time: list[float] = field(default_factory=list)
    time_to_human: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cost: Decimal = Decimal(0)
    revenue: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    worst: dict[str, list[tuple[float, int]]] = field(
        default_factory=lambda: {name: [] for name in WORST})


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def _conversations(since: datetime, until: datetime) -> dict[int, _Conv]:
    rows = outcome_annotate(Conversation.objects.filter(
        started_at__gte=since, started_at__lt=until)).values_list(
        "pk", "channel", "started_at", "first_customer_at", "first_reply_at",
        "first_human_at", "resolved_at", "is_resolved", "is_human", "is_escalated",
        "is_repeat", "is_converted", "latest_csat", "latest_nps", "last_handoff_state")
    found = {}
    for (pk, channel, started, first_customer, first_reply, first_human, resolved_at,
         resolved, human, escalated, repeat, converted, csat, nps, last_state) in rows:
        found[pk] = _Conv(
            pk=pk, channel=channel, first_response=_seconds(first_customer, first_reply),
            first_human=_seconds(first_customer, first_human),
            resolution_time=_seconds(started, resolved_at) if resolved else None,
            resolved=resolved, contained=resolved and not human and not repeat,
            escalated=escalated, repeat=repeat, converted=converted, csat=csat, nps=nps,
            bucket=handoff_bucket(last_state))
    return found


def _details(convs: dict[int, _Conv], since: datetime, until: datetime) -> None:
    """AI steps, revenue, handoffs with their SLA waits, customer warmth, QA reviews."""
    started = {"conversation__started_at__gte": since, "conversation__started_at__lt": until}
    for cid, request, response, prompt, cost in AIStep.objects.filter(**started).values_list(
            "conversation_id", "request_model", "response_model", "prompt_version", "cost"):
        c = convs.get(cid)
        if c is None:
            continue
        if response or request:
            c.models.add(response or request)  # dashboard_selectors.MODEL_SQL's rule
        if prompt:
            c.prompts.add(prompt)
        if cost is not None:
            c.cost = (c.cost or Decimal(0)) + cost
    for cid, currency, amount in Outcome.objects.filter(
            **started, revenue_amount__isnull=False).exclude(revenue_currency="").values_list(
            "conversation_id", "revenue_currency", "revenue_amount"):
        if cid in convs:
            revenue = convs[cid].revenue
            revenue[currency] = revenue.get(currency, Decimal(0)) + amount
    waits: dict[int, list[bool]] = defaultdict(list)
    for handoff_id, met in Wait.objects.filter(
            handoff__conversation__started_at__gte=since,
            handoff__conversation__started_at__lt=until,
            allowed_seconds__isnull=False, met__isnull=False).values_list("handoff_id", "met"):
        waits[handoff_id].append(met)
    for (pk, cid, agent_id, agent_name, queue, state, engaged_at, tth, stalled,
         dropped_at, team) in Handoff.objects.filter(**started).order_by("number").values_list(
            "pk", "conversation_id", "agent_id", "agent_name", "queue", "state", "engaged_at",
            "time_to_human", "stalled_count", "dropped_at", "team"):
        if cid in convs:
            convs[cid].handoffs.append((agent_id, agent_name, queue, state,
                                        engaged_at is not None, tth, stalled > 0,
                                        dropped_at is not None, waits.get(pk, []), team))
    for cid, agent, name in conversation_agents(started_at__gte=since, started_at__lt=until):
        if cid in convs:
            agents = convs[cid].agents
            agents[agent] = agents.get(agent) or name
    first_last: dict[int, list[Any]] = {}  # [first, last, how many]
    for cid, value in Score.objects.filter(
            **started, name="warmth", source=Score.Source.AUTO,
            author_kind=AuthorKind.CUSTOMER, subject_type=Score.SubjectType.MESSAGE,
    ).order_by("conversation_id", "occurred_at", "subject_id").values_list(
            "conversation_id", "value"):
        seen = first_last.get(cid)
        if seen is None:
            first_last[cid] = [value, value, 1]
        else:
            seen[1:] = [value, seen[2] + 1]
    for cid, (first, last, count) in first_last.items():
        if count >= 2 and cid in convs:
            convs[cid].warmth = (first, last)
    # The reviews the QA results count (scoring.qa_counted: a reviewer's latest per
    # scorecard), so a group's QA figures and the QA page agree.
    for cid, score, failed in reviews_counted().filter(**started).order_by("pk").values_list(
            "conversation_id", "score_100", "failed"):
        if cid in convs:
            convs[cid].reviews.append((score, failed))


def _add(acc: _Acc, c: _Conv, handoffs: list[tuple[Any, ...]]) -> None:
    acc.conversations += 1
    n, s = acc.counts, acc.sums
    for name in ("first_response", "first_human", "resolution_time"):
        value = getattr(c, name)
        if value is not None:
            getattr(acc, name).append(value)
    for name in ("resolved", "contained", "escalated", "repeat", "converted"):
        n[name] += getattr(c, name)
    if c.csat is not None:
        n["rated"] += 1
        s["csat_sum"] += c.csat
        s["csat_sq"] += c.csat ** 2
        _worst(acc, "lowest_csat", c.csat, c.pk)
    if c.nps is not None:
        n["nps_n"] += 1
        n["promoters"] += c.nps >= PROMOTER_MIN
        n["detractors"] += c.nps <= DETRACTOR_MAX
    for currency, amount in c.revenue.items():
        acc.revenue[currency] += amount
    if c.cost is not None:
        n["costed"] += 1
        acc.cost += c.cost
        s["cost_sq"] += float(c.cost) ** 2
        _worst(acc, "expensive", float(c.cost), c.pk)
    if c.resolution_time is not None:
        _worst(acc, "slowest", c.resolution_time, c.pk)
    if c.warmth is not None:
        n["sentiment_n"] += 1
        s["warmth_start"] += c.warmth[0]
        s["warmth_end"] += c.warmth[1]
    if c.reviews:
        for score, failed in c.reviews:
            n["qa_reviews"] += 1
            n["qa_failed"] += failed
            s["qa_sum"] += score or 0.0
    longest = None
    for (_, _, _, state, reached, tth, stalled, dropped, waits, _) in handoffs:
        n["handoffs"] += 1
        n["reached"] += reached
        n["stalled"] += stalled
        n["dropped"] += dropped
        n["handoff_resolved"] += state == "resolved"
        n["sla_waits"] += len(waits)
        n["sla_met"] += sum(waits)
        if reached and tth is not None:
            acc.time_to_human.append(tth)
            longest = tth if longest is None else max(longest, tth)
    if longest is not None:
        _worst(acc, "longest_wait", longest, c.pk)


def _worst(acc: _Acc, name: str, value: float, pk: int) -> None:
    """Keep the WORST_N worst: a min-heap of (badness, -pk) so ties keep the older ids."""
    badness = value if WORST[name] else -value
    heap = acc.worst[name]
    item = (badness, -pk)
    if len(heap) < WORST_N:
        heapq.heappush(heap, item)
    elif item > heap[0]:
        heapq.heapreplace(heap, item)


def _pack(values: list[float]) -> bytes:
    return numpy.asarray(values, dtype=FLOATS).tobytes()


def _groups(c: _Conv) -> Iterable[tuple[str, str, str, list[tuple[Any, ...]]]]:
    """(kind, key, label, the group's handoffs) for each group the conversation is in."""
    yield "channel", "", "", c.handoffs
    yield "bucket", c.bucket, "", c.handoffs
    for m in sorted(c.models):
        yield "model", m, "", c.handoffs
    for p in sorted(c.prompts):
        yield "prompt", p, "", c.handoffs
    queues: set[str] = set()
    teams: set[str] = set()
    for h in c.handoffs:
        if h[2]:
            queues.add(h[2])
        if h[9]:
            teams.add(h[9])
    for agent, name in sorted(c.agents.items()):
        yield "agent", agent, name, [h for h in c.handoffs if h[0] == agent]
    for queue in sorted(queues):
        yield "queue", queue, "", [h for h in c.handoffs if h[2] == queue]
    for team in sorted(teams):
        yield "team", team, "", [h for h in c.handoffs if h[9] == team]


def outcome_day_rows(day: date, *, built_at: datetime | None) -> tuple[
        list[OutcomeDaily], set[date]]:
    """The OutcomeDaily rows of `day`, and the earlier days whose repeat-contact figures the
    conversations created since the day's last build (`built_at`; None: never built)
    change."""
    tz = timezone.get_current_timezone()
    since = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    until = since + timedelta(days=1)
    convs = _conversations(since, until)
    _details(convs, since, until)
    accs: dict[tuple[str, str, str], _Acc] = {}
    for c in convs.values():
        for kind, key, label, handoffs in _groups(c):
            acc = accs.get((c.channel, kind, key))
            if acc is None:
                acc = accs[c.channel, kind, key] = _Acc()
            acc.label = label or acc.label
            _add(acc, c, handoffs)
    rows = [
        OutcomeDaily(
            day=day, channel=channel, kind=kind, key=key[:255], label=acc.label[:255],
            conversations=acc.conversations,
            first_response=_pack(acc.first_response), first_human=_pack(acc.first_human),
            resolution_time=_pack(acc.resolution_time),
            time_to_human=_pack(acc.time_to_human),
            revenue={cur: str(amount) for cur, amount in sorted(acc.revenue.items())},
            cost=acc.cost,
            worst={name: sorted(([(-b if not WORST[name] else b), -m] for b, m in heap),
                                reverse=WORST[name])
                   for name, heap in acc.worst.items() if heap},
            **{name: acc.counts[name] for name in (
                "resolved", "contained", "escalated", "repeat", "converted", "rated",
                "nps_n", "promoters", "detractors", "costed", "sentiment_n", "handoffs",
                "reached", "stalled", "dropped", "handoff_resolved", "sla_waits", "sla_met",
                "qa_reviews", "qa_failed")},
            **{name: acc.sums[name] for name in (
                "csat_sum", "csat_sq", "cost_sq", "warmth_start", "warmth_end", "qa_sum")},
        )
        for (channel, kind, key), acc in accs.items()
    ]
    return rows, _repeat_days_changed(since, until, built_at)


def _repeat_days_changed(since: datetime, until: datetime,
                         built_at: datetime | None) -> set[date]:
    """Start days of earlier conversations (within the repeat window) of the customers of
    the conversations that appeared since the last build: their repeat figure changed."""
    new = Conversation.objects.filter(started_at__gte=since, started_at__lt=until)
    if built_at is not None:
        # A margin for transactions that committed after the last build's snapshot.
        new = new.filter(created_at__gte=built_at - timedelta(minutes=2))
    window = timedelta(days=repeat_days())
    earlier = Conversation.objects.filter(
        started_at__gte=since - window, started_at__lt=since,
        customer_address__in=new.values("customer_address"),
    ).values_list("channel", "customer_address", "started_at")
    pairs = set(new.values_list("channel", "customer_address"))
    return {timezone.localdate(at) for channel, address, at in earlier
            if (channel, address) in pairs}
