"""Reads for the inbox page and its API: one page of conversations (filtered by
audit.inbox_filters, sorted, keyset-paginated by audit.keyset) with the details a row shows.

Query counts do not depend on page size or data volume: one query for a page of
conversations, then one per kind of detail for the whole page. The replay's reads are in
audit.replay_selectors.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from audit.inbox_filters import InboxFilters, inbox_queryset, problem_flags
from audit.keyset import SORTS, cursor_after, cursor_decode, cursor_of
from audit.masking import mask_address, mask_text
from audit.qa_selectors import User
from conversations.models import FLAG_SEVERITY_RANK, Conversation, Flag, Message
from handoffs.business_time import business_seconds
from handoffs.machine import ACTIVE
from handoffs.models import Handoff, Wait
from handoffs.policies import policy_calendar
from scoring.models import Score

TONE = "brand_tone"  # the overall brand-tone score, 0-1 (shown as 0-100)
PAGE_SIZE = 50
SEVERITY_BY_RANK = {rank: name for name, rank in FLAG_SEVERITY_RANK.items()}


@dataclass
class InboxRow:
    conversation: Conversation
    handoff: Handoff | None = None
    wait: dict[str, Any] | None = None  # the open SLA wait: kind, waited, allowed, over
    flags: list[Flag] = field(default_factory=list)
    tone: float | None = None  # the latest outbound message's brand tone, 0-100

    @property
    def severity(self) -> str:
        return SEVERITY_BY_RANK.get(self.conversation.open_flag_rank, "")


@dataclass
class InboxPage:
    rows: list[InboxRow]
    next_cursor: str
    sort: str


# A masked search reads at most this many candidate conversations for one page.
MASKED_SCAN = 500


def conversations_masked_match(*, conversations: list[Conversation], q: str
                               ) -> list[Conversation]:
    """The conversations whose text *as a viewer without view_pii sees it* (masked address,
    subject and bodies) holds `q`: a viewer's search must not match what it cannot see, or
    adding one digit at a time to a masked number reads it back. The database's match on the
    raw text is a superset (a masked text holds no character it did not have), so only its
    candidates are checked here. One query."""
    if not conversations or not q:
        return conversations
    needle = q.casefold()
    bodies: dict[int, list[str]] = defaultdict(list)
    for conversation_id, body in Message.objects.filter(
        conversation_id__in=[c.pk for c in conversations], body__icontains=q
    ).values_list("conversation_id", "body"):
        bodies[conversation_id].append(body)
    return [
        c for c in conversations
        if needle in mask_address(c.customer_address or "").casefold()
        or needle in mask_text(c.subject or "").casefold()
        or any(needle in mask_text(b).casefold() for b in bodies.get(c.pk, ()))
    ]


def inbox_page(*, filters: InboxFilters, sort: str = "recent", cursor: str = "",
               size: int = PAGE_SIZE, now: datetime | None = None,
               masked: bool = False, reader: User | None = None) -> InboxPage:
    """One page of the inbox; `next_cursor` is empty on the last page. `masked`: the
    reader may not see PII, so `q` matches only the masked text (a page may then hold
    fewer rows than `size` and still have a next one)."""
    if sort not in SORTS:
        sort = "recent"
    order = ["-last_activity_at", "-id"]
    if sort == "severity":
        order = ["-open_flag_rank", *order]
    qs = inbox_queryset(filters=filters, reader=reader).select_related("customer").order_by(
        *order)
    after = cursor_decode(cursor, sort) if cursor else None
    if not (masked and filters.q):
        conversations = list((qs.filter(cursor_after(after, sort)) if after else qs)[: size + 1])
        more = len(conversations) > size
        conversations = conversations[:size]
        next_cursor = cursor_of(conversations[-1], sort) if more and conversations else ""
    else:
        conversations, next_cursor, scanned = [], "", 0
        while True:
            chunk = list((qs.filter(cursor_after(after, sort)) if after else qs)[: size + 1])
            scanned += len(chunk)
            conversations += conversations_masked_match(conversations=chunk, q=filters.q)
            if len(conversations) > size:
                conversations = conversations[:size]
                next_cursor = cursor_of(conversations[-1], sort)
                break
            if len(chunk) <= size:
                break  # no more candidates
            last = chunk[-1]
            after = cursor_decode(cursor_of(last, sort), sort)
            if scanned >= MASKED_SCAN:
                next_cursor = cursor_of(last, sort)  # go on from there on the next page
                break
    rows = inbox_rows(conversations=conversations, now=now)
    if filters.problem or filters.flagged_since or filters.flagged_until:
        # The flags that put a row here, even once resolved: the row says why it is listed.
        matched: dict[int, list[Flag]] = defaultdict(list)
        for flag in problem_flags(filters=filters, reader=reader).filter(
            conversation_id__in=[c.pk for c in conversations]
        ).exclude(status__in=Flag.ACTIVE_STATUSES).order_by("-raised_at"):
            matched[flag.conversation_id].append(flag)
        for row in rows:
            row.flags += matched.get(row.conversation.pk, [])
    return InboxPage(rows=rows, next_cursor=next_cursor, sort=sort)


def inbox_rows(*, conversations: list[Conversation], now: datetime | None = None) -> list[InboxRow]:
    """The details a page shows, in three queries for the whole page."""
    now = now or timezone.now()
    ids = [c.pk for c in conversations]
    latest: dict[int, Handoff] = {}
    for handoff in Handoff.objects.filter(conversation_id__in=ids).order_by(
        "conversation_id", "-number"
    ):
        latest.setdefault(handoff.conversation_id, handoff)
    waits: dict[int, Wait] = {}
    active = [h.pk for h in latest.values() if h.state in ACTIVE]
    for wait in Wait.objects.filter(handoff_id__in=active, ended_at__isnull=True).order_by(
        "started_at"
    ):
        waits[wait.handoff_id] = wait
    flags: dict[int, list[Flag]] = defaultdict(list)
    for flag in Flag.objects.filter(
        conversation_id__in=ids, status__in=Flag.ACTIVE_STATUSES
    ).order_by("-raised_at"):
        flags[flag.conversation_id].append(flag)
    tone: dict[int, float] = {}
    for conversation_id, value in Score.objects.filter(
        conversation_id__in=ids, name=TONE, source=Score.Source.AUTO
    ).order_by("conversation_id", "-occurred_at", "-id").values_list("conversation_id", "value"):
        tone.setdefault(conversation_id, round(value * 100))
    rows = []
    for conversation in conversations:
        handoff = latest.get(conversation.pk)
        wait = waits.get(handoff.pk) if handoff else None
        rows.append(InboxRow(
            conversation=conversation, handoff=handoff,
            wait=_wait_summary(wait, handoff, now) if wait and handoff else None,
            flags=sorted(flags.get(conversation.pk, []),
                         key=lambda f: -FLAG_SEVERITY_RANK.get(f.severity, 0)),
            tone=tone.get(conversation.pk),
        ))
    return rows


def _wait_summary(wait: Wait, handoff: Handoff, now: datetime) -> dict[str, Any]:
    waited = business_seconds(wait.started_at, now, policy_calendar(handoff.policy))
    allowed = wait.allowed_seconds
    return {
        "kind": wait.kind, "since": wait.started_at, "waited_seconds": waited,
        "allowed_seconds": allowed, "deadline_at": wait.deadline_at,
        "over": allowed is not None and waited > allowed,
        "business_hours": wait.business_hours,
    }
