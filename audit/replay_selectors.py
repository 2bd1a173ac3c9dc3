"""Reads for the replay: a conversation's whole journey in time order, with its handoffs'
transitions, SLA waits, AI turns (span trees) and scores woven in, in constant queries."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR

from audit.span_tree import turns_build
from conversations.models import Conversation
from conversations.selectors import JourneyItem, conversation_journey
from handoffs.business_time import business_seconds
from handoffs.models import Handoff, HandoffTransition, Wait
from handoffs.policies import policy_calendar
from scoring.models import Score

TONE = "brand_tone"  # the overall brand-tone score, 0-1 (shown as 0-100)


@dataclass(frozen=True)
class ReplayItem(JourneyItem):
    when: str = ""  # `at` for people (site time zone), formatted once here, not per filter


class _When:
    """The template filter `date:"D d M H:i:s"` with Django's (translated) day and month
    names, for a timeline's entries: the names are looked up once per day, not per entry
    (the replay formats one time per entry; Django's filter took a quarter of the page)."""

    def __init__(self) -> None:
        self.days: dict[date, str] = {}

    def __call__(self, at: datetime) -> str:
        local = timezone.localtime(at)
        day = local.date()
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = (
                f"{WEEKDAYS_ABBR[day.weekday()]} {day:%d} {MONTHS_3[day.month].title()}")
        return f"{prefix} {local:%H:%M:%S}"


@dataclass
class Replay:
    conversation: Conversation
    items: list[ReplayItem]
    handoffs: list[Handoff]
    ai_cost: float
    ai_tokens: int
    tone_mean: float | None = None  # mean brand tone of the scored outbound messages, 0-100
    ai_steps: int = 0

    @property
    def flag_count(self) -> int:
        return sum(1 for i in self.items if i.kind == "flag")


def _turns_woven(items: list[JourneyItem], transitions: list[HandoffTransition]
                 ) -> list[JourneyItem]:
    """AI steps that came as OpenTelemetry spans are drawn as their trace's span tree (one
    `ai_turn` item per trace, audit.span_tree) with the handoff decisions around it."""
    traced = [i.obj for i in items if i.kind == "ai_step" and i.obj.trace_id]
    if not traced:
        return items
    by = {"ai": "the AI", "customer": "the customer", "rule": "a rule", "human": "a person"}
    decisions = [(t.occurred_at, f"handoff {t.to_state}"
                  + (f" by {by.get(t.handoff.requested_by, t.handoff.requested_by)}"
                     if t.to_state == "requested" and t.handoff.requested_by else ""))
                 for t in transitions if t.applied]
    turns = turns_build(traced, decisions)
    kept = [i for i in items if not (i.kind == "ai_step" and i.obj.trace_id)]
    return kept + [JourneyItem(t.started_at, "ai_turn", t) for t in turns]


def conversation_replay(*, conversation: Conversation) -> Replay:
    """The whole journey in time order, with each handoff's transitions (and the SLA waits
    they opened) woven in. Constant queries whatever the conversation's length."""
    items = conversation_journey(conversation=conversation)
    handoffs = list(
        Handoff.objects.filter(conversation=conversation).order_by("number")
    )
    transitions = HandoffTransition.objects.filter(handoff__in=handoffs).select_related(
        "handoff"
    )
    transitions = list(transitions)
    items += [JourneyItem(t.occurred_at, "transition", t) for t in transitions]
    items = _turns_woven(items, transitions)
    waits = Wait.objects.filter(handoff__in=handoffs).order_by("started_at")
    by_handoff: dict[int, list[Wait]] = defaultdict(list)
    for wait in waits:
        by_handoff[wait.handoff_id].append(wait)
    now = timezone.now()
    for handoff in handoffs:
        handoff.wait_list = by_handoff.get(handoff.pk, [])
        for wait in handoff.wait_list:
            # An open wait: how long the customer has waited so far, counted as its limit is.
            wait.waited_so_far = None if wait.ended_at else business_seconds(
                wait.started_at, now,
                policy_calendar(handoff.policy) if wait.business_hours else None)
    order = {"event": 0, "transition": 1, "ai_turn": 2, "ai_step": 2.5, "message": 3,
             "outcome": 4, "flag": 5}
    items.sort(key=lambda i: (i.at, order.get(i.kind, 9), str(i.obj.pk)))
    scores: dict[int, dict[str, Score]] = defaultdict(dict)
    for score in Score.objects.filter(
        conversation=conversation, subject_type=Score.SubjectType.MESSAGE
    ).order_by("created_at"):
        scores[score.subject_id][f"{score.source}:{score.name}"] = score
    tones = []
    when = _When()
    items = [ReplayItem(i.at, i.kind, i.obj, when(i.at)) for i in items]
    for item in items:
        if item.kind == "message":
            # Once here: the template reads it in several places.
            item.obj.author_label = item.obj.get_author_kind_display()
            by_name = scores.get(item.obj.pk, {})
            item.obj.auto_scores = sorted(
                (s for k, s in by_name.items() if k.startswith("auto:") and s.name != TONE),
                key=lambda s: s.name,
            )
            item.obj.tone = by_name.get(f"auto:{TONE}")
            if item.obj.tone is not None and item.obj.direction == "outbound":
                tones.append(item.obj.tone.value)
    steps = [i.obj for i in items if i.kind == "ai_step"]
    return Replay(
        conversation=conversation,
        items=items,
        handoffs=handoffs,
        ai_cost=float(sum(s.cost or 0 for s in steps)),
        ai_tokens=sum((s.input_tokens or 0) + (s.output_tokens or 0) for s in steps),
        tone_mean=round(100 * sum(tones) / len(tones)) if tones else None,
        ai_steps=len(steps),
    )
