"""Load: what the handoff machine needs to decide a batch, read explicitly into a BatchState.

For the conversations the batch names that have work (a handoff in progress, an ask for a
human watched or made, or a trigger), in a few queries for the whole batch: their row
locks (in id order, so concurrent batches queue instead of deadlocking), their handoffs
with the open waits (and reply waits ended since the batch's first item), what the log
has seen, which customer messages already started a wait, their asks for a human, the
active flags the machine may refresh or clear; and, only where a handoff may open or
engage, the rows dated from the batch's first item on (catch-up of rows that overtook a
handoff, reply waits overtaken, whether the AI was in charge) and the SLA policies.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Max, Q
from django.utils import timezone

from conversations.conf import auditor_settings
from conversations.models import AIStep, AuthorKind, Conversation, ConversationEvent, Flag, Message

from .flags import DROPPED, MISSED, STALLED, human_request_match
from .journey_decide import items_build
from .journey_findings import EVENT, MESSAGE, is_ai_reply, is_customer, is_human_reply
from .journey_state import (
    AskRow,
    BatchState,
    ConversationState,
    EventRow,
    FlagRow,
    HandoffRow,
    Item,
    MessageRow,
    Rules,
    WaitRow,
)
from .machine import ACTIVE, EVENT_TRIGGERS, OPENING, State
from .models import Handoff, HandoffTransition, HumanAsk, Wait
from .policies import policies_load

# Events that may have overtaken a handoff's opening (they never open one themselves).
CATCH_UP_TYPES = [t for t, trigger in EVENT_TRIGGERS.items() if trigger not in OPENING]

_HANDOFF_FIELDS = [
    "conversation_id", "number", "channel", "state", "state_entered_at", "requested_at",
    "policy", "requested_by", "reason", "queue", "agent_id", "agent_name", "team", "queued_at",
    "assigned_at", "engaged_at", "ended_at", "time_to_human", "time_to_human_business",
    "window_expires_at", "last_customer_message_at", "ai_replies_after_request",
    "last_ai_message_id", "dropped_reasons", "dropped_at", "stalled_count",
]
_WAIT_FIELDS = [
    "kind", "started_at", "allowed_seconds", "business_hours", "deadline_at",
    "source_message_id", "ended_at", "waited_seconds", "met", "stalled_at",
]
_ASK_FIELDS = [
    "conversation_id", "message_id", "asked_at", "matched", "ai_turns", "last_ai_message_id",
    "repeats", "last_repeat_message_id", "status", "handoff_id", "decided_at",
]
_FLAG_FIELDS = [
    "conversation_id", "kind", "severity", "subject_type", "subject_id", "evidence",
    "raised_at", "status", "status_changed_at", "status_changed_by", "note", "updated_at",
]
_MESSAGE_FIELDS = ["conversation_id", "sent_at", "author_kind", "direction", "body",
                   "raw_event_id"]


def rules_load() -> Rules:
    return Rules(
        patterns=tuple(auditor_settings.HUMAN_REQUEST_PATTERNS),
        ai_replies_allowed=auditor_settings.HANDOFF_AI_REPLIES_ALLOWED,
        missed_ai_turns=auditor_settings.HANDOFF_MISSED_AI_TURNS,
        whatsapp_window_hours=auditor_settings.WHATSAPP_WINDOW_HOURS,
    )


def _message_row(message: Message) -> MessageRow:
    return MessageRow(
        pk=message.pk, conversation_id=message.conversation_id, sent_at=message.sent_at,
        author_kind=message.author_kind, direction=message.direction, body=message.body or "",
        raw_event_id=message.raw_event_id,
    )


def _event_row(event: ConversationEvent) -> EventRow:
    return EventRow(
        pk=event.pk, conversation_id=event.conversation_id, type=event.type,
        occurred_at=event.occurred_at, actor_kind=event.actor_kind, actor_id=event.actor_id,
        actor_name=event.actor_name, data=event.data or {}, raw_event_id=event.raw_event_id,
    )


def journey_load(
    *,
    messages: Iterable[Message],
    conversation_events: Iterable[ConversationEvent],
) -> tuple[BatchState, dict[int, list[Item]]] | None:
    """The state and items of a batch, or None when it gives the machine no work. Takes
    the row locks of the conversations with work (inside the caller's transaction)."""
    # A batch may name the same row twice (an event re-sent inside one batch): once each.
    message_rows = [_message_row(m) for m in {m.pk: m for m in messages}.values()]
    event_rows = [_event_row(e) for e in {e.pk: e for e in conversation_events}.values()]
    by_conversation = items_build(message_rows, event_rows)
    if not by_conversation:
        return None
    rules = rules_load()
    # One unlocked look decides which conversations have work; most inbound messages in
    # conversations without a handoff have none and cost nothing more.
    active = set(Handoff.objects.filter(
        conversation_id__any=by_conversation, state__in=sorted(ACTIVE)
    ).values_list("conversation_id", flat=True))
    watching: set[int] = set()
    if any(i.trigger is not None or (i.message is not None and is_ai_reply(i.message))
           for items in by_conversation.values() for i in items):
        watching = set(HumanAsk.objects.filter(
            conversation_id__any=by_conversation, status=HumanAsk.Status.WATCHING
        ).values_list("conversation_id", flat=True))
    triggered = {cid for cid, items in by_conversation.items()
                 if any(i.trigger is not None for i in items)}
    asking = {
        cid for cid, items in by_conversation.items()
        if any(i.message is not None and is_customer(i.message)
               and human_request_match(i.message.body, rules.patterns) for i in items)
    }
    work = sorted(active | (watching & set(by_conversation)) | asking | triggered)
    if not work:
        return None
    items = {cid: by_conversation[cid] for cid in work}
    conversations = {
        pk: ConversationState(pk=pk, channel=channel, last_customer_message_at=last)
        for pk, channel, last in Conversation.objects.select_for_update()
        .filter(pk__any=work).order_by("pk")
        .values_list("pk", "channel", "last_customer_message_at")
    }
    since = min(i.at for cid in work for i in items[cid])
    handoffs = _handoffs_load(conversations, since)
    # Where a handoff may open or engage: rows dated from the batch's start, the policies.
    extra = [
        cid for cid in work
        if any(i.trigger is not None for i in items[cid])
        and not (conversations[cid].active is not None
                 and conversations[cid].active.state == State.ENGAGED
                 and all(i.event is None for i in items[cid]))
    ]
    later_messages: list[MessageRow] = []
    later_events: list[EventRow] = []
    if extra:
        later_messages, later_events = _later_load(conversations, extra, since)
        agents = {m.pk: m.agent for m in later_messages}
        for m in message_rows:
            m.agent = agents.get(m.pk, m.agent)
    batch_events = [e for cid in work for i in items[cid] if (e := i.event) is not None]
    batch_messages = [m for cid in work for i in items[cid] if (m := i.message) is not None]
    seen = _seen_load(
        [e.pk for e in (*batch_events, *later_events)],
        [m.pk for m in (*batch_messages, *later_messages) if is_human_reply(m)],
    )
    customers = {m.pk for m in (*batch_messages, *later_messages) if is_customer(m)}
    waited = set(Wait.objects.filter(source_message_id__any=customers).values_list(
        "source_message_id", flat=True)) if customers else set()
    # Asks matter where one is watched or made, or where a handoff may open or end.
    asks_for = sorted((watching & set(work)) | asking | set(extra))
    if asks_for:
        _asks_load(conversations, asks_for)
    _flags_load(conversations, handoffs)
    return BatchState(
        rules=rules,
        now=timezone.now(),
        policies=policies_load() if extra else [],
        conversations=conversations,
        seen=seen,
        waited=waited,
    ), items


def _handoffs_load(
    conversations: dict[int, ConversationState], since: datetime
) -> dict[int, HandoffRow]:
    """Every handoff of the conversations; the one in progress with its open waits and the
    reply waits it ended since `since` (a customer message they covered was answered)."""
    by_pk: dict[int, HandoffRow] = {}
    for values in Handoff.objects.filter(conversation_id__any=list(conversations)).order_by(
        "conversation_id", "number"
    ).values("id", *_HANDOFF_FIELDS):
        pk = values.pop("id")
        handoff = HandoffRow(pk=pk, **values)
        by_pk[pk] = handoff
        conversation = conversations[handoff.conversation_id]
        conversation.handoffs.append(handoff)
        if handoff.state in ACTIVE:
            conversation.active = handoff
    active = {c.active.pk: c.active for c in conversations.values() if c.active is not None}
    if active:
        for values in Wait.objects.filter(handoff_id__any=list(active)).filter(
            Q(ended_at__isnull=True) | Q(kind=Wait.Kind.REPLY, ended_at__gte=since)
        ).order_by("started_at", "id").values("id", "handoff_id", *_WAIT_FIELDS):
            handoff = active[values.pop("handoff_id")]
            wait = WaitRow(handoff=handoff, pk=values.pop("id"), **values)
            if wait.ended_at is None:
                handoff.open_waits.append(wait)
            else:
                handoff.reply_waits_ended.append(wait)
    return active


def _later_load(
    conversations: dict[int, ConversationState], ids: list[int], since: datetime
) -> tuple[list[MessageRow], list[EventRow]]:
    messages = [
        MessageRow(pk=v.pop("id"), agent=(v.pop("participant__external_id") or "",
                                          v.pop("participant__display_name") or ""), **v)
        for v in Message.objects.filter(conversation_id__any=ids, sent_at__gte=since)
        .order_by("sent_at", "id")
        .values("id", *_MESSAGE_FIELDS, "participant__external_id", "participant__display_name")
    ]
    events = [
        _event_row(e) for e in ConversationEvent.objects.filter(
            conversation_id__any=ids, occurred_at__gte=since, type__in=CATCH_UP_TYPES
        ).order_by("occurred_at", "id")
    ]
    for m in messages:
        m.body = m.body or ""
        conversations[m.conversation_id].later_messages.append(m)
        if m.author_kind == AuthorKind.AI:
            conversations[m.conversation_id].ai_times.append(m.sent_at)
    for e in events:
        conversations[e.conversation_id].later_events.append(e)
    # Whether the AI was in charge before a reply: the latest AI message and step before
    # `since` stand for all earlier ones.
    for cid, latest in Message.objects.filter(
        conversation_id__any=ids, author_kind=AuthorKind.AI, sent_at__lt=since
    ).values("conversation_id").annotate(latest=Max("sent_at")).values_list(
        "conversation_id", "latest"
    ):
        conversations[cid].ai_times.append(latest)
    steps = AIStep.objects.filter(conversation_id__any=ids)
    for cid, latest in steps.filter(occurred_at__lt=since).values("conversation_id").annotate(
        latest=Max("occurred_at")
    ).values_list("conversation_id", "latest"):
        conversations[cid].ai_times.append(latest)
    for cid, at in steps.filter(occurred_at__gte=since).values_list("conversation_id",
                                                                     "occurred_at"):
        conversations[cid].ai_times.append(at)
    return messages, events


def _seen_load(event_ids: list[int], message_ids: list[int]) -> set[tuple[str, int]]:
    if not event_ids and not message_ids:
        return set()
    rows = HandoffTransition.objects.filter(
        Q(source_type=EVENT, source_id__any=event_ids)
        | Q(source_type=MESSAGE, source_id__any=message_ids)
    ).values_list("source_type", "source_id")
    return {(t, i) for t, i in rows}


def _asks_load(conversations: dict[int, ConversationState], ids: list[int]) -> None:
    for values in HumanAsk.objects.filter(conversation_id__any=ids).order_by("id").values(
        "id", *_ASK_FIELDS, "message__body"
    ):
        body = values.pop("message__body") or ""
        ask = AskRow(pk=values.pop("id"), excerpt=body[:200], **values)
        conversations[ask.conversation_id].asks.append(ask)


def _flags_load(conversations: dict[int, ConversationState],
                handoffs: dict[int, HandoffRow]) -> None:
    """The active flags the machine may refresh or clear: stalled and dropped of the
    handoffs in progress, missed of the asks loaded."""
    asked = {a.message_id: c for c in conversations.values() for a in c.asks}
    condition = Q()
    if handoffs:
        condition |= Q(kind__in=[STALLED, DROPPED], subject_type=Flag.SubjectType.HANDOFF,
                       subject_id__any=list(handoffs))
    if asked:
        condition |= Q(kind=MISSED, subject_type=Flag.SubjectType.MESSAGE,
                       subject_id__any=list(asked))
    if not condition:
        return
    for values in Flag.objects.filter(condition, status__in=Flag.ACTIVE_STATUSES).values(
        "id", *_FLAG_FIELDS
    ):
        flag = FlagRow(pk=values.pop("id"), **values)
        if flag.subject_type == Flag.SubjectType.HANDOFF:
            handoff = handoffs[flag.subject_id]
            flag.handoff = handoff
            conversations[handoff.conversation_id].flags[
                (flag.kind, Flag.SubjectType.HANDOFF, handoff)] = flag
        else:
            asked[flag.subject_id].flags[(flag.kind, Flag.SubjectType.MESSAGE,
                                          flag.subject_id)] = flag
