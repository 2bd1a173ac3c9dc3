"""What each outcome figure means for one conversation, written once as ORM expressions.

The daily outcome rollups (audit.outcome_rollups) annotate a day's conversations with these
expressions and add them up; the inbox's drill-down filters (audit.inbox_filters, `outcome=`)
filter with the very same expressions, so the conversations a figure links to are the ones
it counted. Definitions, in people's words, are in docs/reports.md and on the pages.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Least

from conversations.conf import auditor_settings
from conversations.models import (
    AuthorKind,
    Conversation,
    Direction,
    Message,
    Outcome,
    Participant,
)
from handoffs.models import Handoff
from scoring.models import Score

PROMOTER_MIN, DETRACTOR_MAX = 9, 6  # NPS: 9-10 promoters, 0-6 detractors


def repeat_days() -> int:
    return int(auditor_settings.REPEAT_CONTACT_DAYS)


def _first_message(**where: Any) -> Subquery:
    return Subquery(Message.objects.filter(conversation=OuterRef("pk"), **where)
                    .order_by("sent_at", "pk").values("sent_at")[:1])


def _latest_outcome(field: str) -> Subquery:
    return Subquery(Outcome.objects.filter(conversation=OuterRef("pk"),
                                           **{f"{field}__isnull": False})
                    .order_by("-occurred_at", "-pk").values(field)[:1])


def resolved_q() -> Q:
    """Resolved: an outcome said resolved, or one of its handoffs ended resolved (the
    dashboards' meaning)."""
    return Q(Exists(Outcome.objects.filter(conversation=OuterRef("pk"), resolved=True))) | Q(
        Exists(Handoff.objects.filter(conversation=OuterRef("pk"), state="resolved")))


def human_q() -> Q:
    """A human took part: a handoff was requested, or a human agent wrote."""
    return Q(Exists(Handoff.objects.filter(conversation=OuterRef("pk")))) | Q(
        Exists(Message.objects.filter(conversation=OuterRef("pk"),
                                      author_kind=AuthorKind.HUMAN)))


def escalated_q() -> Q:
    """Escalated: a handoff to a human was requested, or an outcome said escalated."""
    return Q(Exists(Handoff.objects.filter(conversation=OuterRef("pk")))) | Q(
        Exists(Outcome.objects.filter(conversation=OuterRef("pk"), escalated=True)))


def repeat_q() -> Q:
    """Repeat contact: the same customer (address, channel) started another conversation
    within REPEAT_CONTACT_DAYS after this one started."""
    later = Conversation.objects.filter(
        channel=OuterRef("channel"), customer_address=OuterRef("customer_address"),
        started_at__gt=OuterRef("started_at"),
        started_at__lte=OuterRef("started_at") + timedelta(days=repeat_days()))
    return Q(Exists(later))


# An agent's conversations: one of its handoffs was assigned to the agent, or the agent wrote
# in it (a human participant with the agent's id, handoff or not). The per-agent reports
# (audit.outcome_rollups), the QA results per agent (audit.qa_results) and the inbox's
# `agent=` filter all read it from here, so a per-agent figure's link lists what it counted.
# (model, the agent's id, the agent's name, further conditions)
AGENT_SOURCES: tuple[tuple[Any, str, str, dict[str, Any]], ...] = (
    (Handoff, "agent_id", "agent_name", {}),
    (Participant, "external_id", "display_name", {"kind": AuthorKind.HUMAN}),
)


def agent_q(agent: str) -> Q:
    """The conversations of `agent` (AGENT_SOURCES)."""
    q = Q()
    for model, key, _, where in AGENT_SOURCES:
        q |= Q(Exists(model.objects.filter(conversation=OuterRef("pk"), **{key: agent},
                                           **where)))
    return q


def conversation_agents(**conversations: Any) -> Iterator[tuple[int, str, str]]:
    """(conversation id, agent id, agent name or "") for every agent of the conversations
    the lookups select (e.g. `started_at__gte=...`, `id__in=[...]`): one query per source,
    handoffs first (their names win)."""
    where = {f"conversation__{k}": v for k, v in conversations.items()}
    for model, key, name, more in AGENT_SOURCES:
        yield from model.objects.filter(**where, **more).exclude(**{key: ""}).order_by(
            "pk").values_list("conversation_id", key, name)


def converted_q() -> Q:
    return Q(Exists(Outcome.objects.filter(conversation=OuterRef("pk"), converted=True)))


def outcome_annotate(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Each conversation with its outcome facts (the rollups' per-conversation row)."""
    resolved_by_outcome = Subquery(Outcome.objects.filter(
        conversation=OuterRef("pk"), resolved=True).order_by("occurred_at", "pk")
        .values("occurred_at")[:1])
    resolved_by_handoff = Subquery(Handoff.objects.filter(
        conversation=OuterRef("pk"), state="resolved", ended_at__isnull=False)
        .order_by("ended_at", "pk").values("ended_at")[:1])
    qs = qs.annotate(
        first_customer_at=_first_message(author_kind=AuthorKind.CUSTOMER,
                                         direction=Direction.INBOUND),
    )
    replies = {"direction": Direction.OUTBOUND, "sent_at__gte": OuterRef("first_customer_at")}
    return qs.annotate(
        first_reply_at=_first_message(author_kind__in=[AuthorKind.AI, AuthorKind.HUMAN],
                                      **replies),
        first_human_at=_first_message(author_kind=AuthorKind.HUMAN, **replies),
        # The first moment it was said resolved (outcome or handoff), whichever is earlier.
        resolved_at=Least(Coalesce(resolved_by_outcome, resolved_by_handoff),
                          Coalesce(resolved_by_handoff, resolved_by_outcome)),
        is_resolved=resolved_q(), is_human=human_q(), is_escalated=escalated_q(),
        is_repeat=repeat_q(), is_converted=converted_q(),
        latest_csat=_latest_outcome("csat"), latest_nps=_latest_outcome("nps"),
        last_handoff_state=_last_handoff_state(),
    )


def _last_handoff_state() -> Subquery:
    return Subquery(Handoff.objects.filter(conversation=OuterRef("pk"))
                    .order_by("-number").values("state")[:1])


# The inbox's `outcome=` filter: one name per figure that counts conversations.
OUTCOME_FILTERS: dict[str, str] = {
    "responded": "got a reply after the customer wrote",
    "human_replied": "a human agent replied",
    "resolved": "resolved",
    "unresolved": "not resolved",
    "contained": "contained: resolved with no human and no return",
    "escalated": "escalated to a human",
    "repeat": "the customer came back within the repeat window",
    "rated": "rated (CSAT)",
    "nps": "answered NPS",
    "promoter": "NPS promoter (9-10)",
    "passive": "NPS passive (7-8)",
    "detractor": "NPS detractor (0-6)",
    "converted": "converted",
    "revenue": "recorded revenue",
    "sentiment": "two or more customer messages scored for warmth",
    "last_none": "no handoff",
    "last_resolved": "last handoff ended resolved",
    "last_abandoned": "last handoff abandoned",
    "last_returned": "last handoff returned to the AI",
    "last_open": "last handoff still open",
}


def outcome_filter(qs: QuerySet[Conversation], name: str) -> QuerySet[Conversation]:
    """Conversations of `qs` that a figure named `name` counts (OUTCOME_FILTERS)."""
    if name in ("resolved", "unresolved"):
        return qs.filter(resolved_q() if name == "resolved" else ~resolved_q())
    if name == "contained":
        return qs.filter(resolved_q() & ~human_q() & ~repeat_q())
    if name == "escalated":
        return qs.filter(escalated_q())
    if name == "repeat":
        return qs.filter(repeat_q())
    if name == "converted":
        return qs.filter(converted_q())
    if name == "revenue":
        return qs.filter(Exists(Outcome.objects.filter(
            conversation=OuterRef("pk"), revenue_amount__isnull=False).exclude(
            revenue_currency="")))
    if name == "sentiment":
        scored = Score.objects.filter(
            conversation=OuterRef("pk"), name="warmth", source=Score.Source.AUTO,
            author_kind=AuthorKind.CUSTOMER, subject_type=Score.SubjectType.MESSAGE,
        ).order_by().values("conversation").annotate(n=Count("pk")).values("n")
        return qs.annotate(warmth_scored=Subquery(scored)).filter(warmth_scored__gte=2)
    if name.startswith("last_"):
        qs = qs.annotate(last_handoff_state=_last_handoff_state())
        bucket = name.removeprefix("last_")
        if bucket == "none":
            return qs.filter(last_handoff_state__isnull=True)
        if bucket == "open":
            return qs.exclude(last_handoff_state__in=["resolved", "abandoned", "returned"]
                              ).filter(last_handoff_state__isnull=False)
        return qs.filter(last_handoff_state=bucket)
    if name == "rated":
        return qs.filter(Exists(Outcome.objects.filter(conversation=OuterRef("pk"),
                                                       csat__isnull=False)))
    if name in ("responded", "human_replied"):
        qs = qs.annotate(first_customer_at=_first_message(
            author_kind=AuthorKind.CUSTOMER, direction=Direction.INBOUND))
        kinds = [AuthorKind.HUMAN] if name == "human_replied" else [AuthorKind.AI,
                                                                      AuthorKind.HUMAN]
        return qs.filter(Exists(Message.objects.filter(
            conversation=OuterRef("pk"), direction=Direction.OUTBOUND, author_kind__in=kinds,
            sent_at__gte=OuterRef("first_customer_at"))))
    if name in ("nps", "promoter", "passive", "detractor"):
        qs = qs.annotate(latest_nps=_latest_outcome("nps")).filter(latest_nps__isnull=False)
        if name == "promoter":
            return qs.filter(latest_nps__gte=PROMOTER_MIN)
        if name == "detractor":
            return qs.filter(latest_nps__lte=DETRACTOR_MAX)
        if name == "passive":
            return qs.filter(latest_nps__gt=DETRACTOR_MAX, latest_nps__lt=PROMOTER_MIN)
        return qs
    raise ValueError(f"unknown outcome filter {name!r}")


def handoff_bucket(state: str | None) -> str:
    """How the conversation's last handoff ended (dashboard_selectors.CSAT_BUCKETS)."""
    if state is None:
        return "none"
    return state if state in ("resolved", "abandoned", "returned") else "open"

