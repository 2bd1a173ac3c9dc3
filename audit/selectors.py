"""Reads for the pages and the API: the inbox (filtered, sorted, keyset-paginated), a
conversation's replay (its journey with the handoffs woven in).

Query counts do not depend on page size or data volume: one query for a page of
conversations, then one per kind of detail for the whole page.
"""

import base64
import binascii
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.utils import timezone
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR

from alerts.selectors import alert_conversation_ids
from audit.masking import mask_address, mask_text
from audit.outcome_rules import outcome_filter
from audit.problems import problem_q
from audit.qa_selectors import User, flag_status_q
from audit.span_tree import turns_build
from conversations.models import (
    FLAG_SEVERITY_RANK,
    AIStep,
    Conversation,
    Flag,
    Message,
    Outcome,
    Participant,
)
from conversations.selectors import JourneyItem, conversation_journey
from handoffs.business_time import business_seconds
from handoffs.machine import ACTIVE
from handoffs.models import Handoff, HandoffTransition, Wait
from handoffs.policies import policy_calendar
from scoring.models import BrandVoice, Score
from scoring.qa_counted import reviews_matching
from scoring.selectors import brand_conversations

TONE = "brand_tone"  # the overall brand-tone score, 0-1 (shown as 0-100)

SORTS = ("recent", "severity")
PAGE_SIZE = 50
SEVERITY_BY_RANK = {rank: name for name, rank in FLAG_SEVERITY_RANK.items()}


class BadCursor(ValueError):
    """A page cursor that was not made by this code (edited or truncated)."""


@dataclass(frozen=True)
class InboxFilters:
    channel: str = ""
    flag_kind: str = ""
    flag_status: str = ""
    handoff_state: str = ""
    agent: str = ""
    model: str = ""
    prompt_version: str = ""
    brand: str = ""  # a BrandVoice name
    since: date | None = None
    until: date | None = None  # inclusive
    q: str = ""
    # "yes": an outcome said resolved or a handoff ended resolved (the dashboards' meaning).
    resolved: str = ""
    alert: int | None = None  # an alert's id: the conversations behind it (alerts app)
    # What went wrong (audit.problems: a key, or "handoff" for any handoff problem), and
    # the days its flag was raised (stamped when the problem began); false positives, as
    # the reader sees them, do not count.
    problem: str = ""
    flagged_since: date | None = None
    flagged_until: date | None = None  # inclusive
    # "me": conversations with an open or acknowledged flag the reader owns.
    assigned: str = ""
    queue: str = ""  # a handoff went through this queue
    team: str = ""  # a handoff was assigned to an agent of this team
    outcome: str = ""  # audit.outcome_rules.OUTCOME_FILTERS: what a report figure counts
    dates: str = ""  # "started": since/until on the start (the reports' periods), else activity
    # The QA results' figures (scoring.qa_counted): qa= a QA_FILTERS key, of a scorecard
    # (its key) and a category (its key); any of them: a counted review exists.
    qa: str = ""
    scorecard: str = ""
    qa_category: str = ""


def day_start(day: date) -> datetime:
    """Midnight starting `day` in the current time zone (days are inclusive filters)."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def inbox_queryset(*, filters: InboxFilters, reader: User | None = None
                   ) -> QuerySet[Conversation]:
    """Conversations matching the filters (no order yet). `reader`: the flag status filter
    uses the statuses that user sees (a blind reviewer's, audit.qa_selectors)."""
    qs = Conversation.objects.all()
    f = filters
    if f.channel:
        qs = qs.filter(channel=f.channel)
    if f.alert:
        qs = qs.filter(pk__in=alert_conversation_ids(alert_id=f.alert))
    moment = "started_at" if f.dates == "started" else "last_activity_at"
    if f.since:
        qs = qs.filter(**{f"{moment}__gte": day_start(f.since)})
    if f.until and f.until < date.max:  # the last day has no "day after": no upper bound
        qs = qs.filter(**{f"{moment}__lt": day_start(f.until + timedelta(days=1))})
    if f.flag_kind or f.flag_status:
        flags = Flag.objects.filter(conversation=OuterRef("pk"))
        if f.flag_kind:
            flags = flags.filter(kind=f.flag_kind)
        if f.flag_status:
            flags = flags.filter(Q(status=f.flag_status) if reader is None
                                 else flag_status_q(user=reader, status=f.flag_status))
        qs = qs.filter(Exists(flags))
    if f.problem or f.flagged_since or f.flagged_until:
        qs = qs.filter(Exists(problem_flags(filters=f, reader=reader)
                              .filter(conversation=OuterRef("pk"))))
    if f.assigned == "me":
        owner = reader.pk if reader is not None and reader.is_authenticated else None
        qs = qs.filter(Exists(Flag.objects.filter(conversation=OuterRef("pk"), owner_id=owner,
                                                  status__in=Flag.ACTIVE_STATUSES)))
    if f.handoff_state in ("any", "none"):  # with a handoff at all, or without
        handed_off = Exists(Handoff.objects.filter(conversation=OuterRef("pk")))
        qs = qs.filter(handed_off if f.handoff_state == "any" else ~handed_off)
    elif f.handoff_state:
        qs = qs.filter(Exists(Handoff.objects.filter(conversation=OuterRef("pk"),
                                                     state=f.handoff_state)))
    if f.resolved:
        resolved = (
            Exists(Outcome.objects.filter(conversation=OuterRef("pk"), resolved=True))
            | Exists(Handoff.objects.filter(conversation=OuterRef("pk"), state="resolved"))
        )
        qs = qs.filter(resolved if f.resolved == "yes" else ~resolved)
    if f.agent:
        qs = qs.filter(
            Exists(Handoff.objects.filter(conversation=OuterRef("pk"), agent_id=f.agent))
            | Exists(Participant.objects.filter(conversation=OuterRef("pk"), kind="human",
                                                external_id=f.agent))
        )
    if f.queue:
        qs = qs.filter(Exists(Handoff.objects.filter(conversation=OuterRef("pk"), queue=f.queue)))
    if f.team:
        qs = qs.filter(Exists(Handoff.objects.filter(conversation=OuterRef("pk"), team=f.team)))
    if f.outcome:
        qs = outcome_filter(qs, f.outcome)
    if f.qa or f.scorecard or f.qa_category:
        qs = qs.filter(Exists(reviews_matching(
            result=f.qa, scorecard=f.scorecard, category=f.qa_category,
        ).filter(conversation=OuterRef("pk"))))
    if f.model:
        qs = qs.filter(Exists(AIStep.objects.filter(
            Q(request_model=f.model) | Q(response_model=f.model), conversation=OuterRef("pk"))))
    if f.prompt_version:
        qs = qs.filter(Exists(AIStep.objects.filter(
            conversation=OuterRef("pk"), prompt_version=f.prompt_version)))
    if f.brand:
        brand = BrandVoice.objects.filter(name=f.brand).first()
        if brand is None:
            return qs.none()
        qs = qs.filter(pk__in=brand_conversations(brand=brand).values("pk"))
    if f.q:
        qs = qs.filter(
            Q(customer_address__icontains=f.q)
            | Q(subject__icontains=f.q)
            | Exists(Message.objects.filter(conversation=OuterRef("pk"), body__icontains=f.q))
        )
    return qs


def problem_flags(*, filters: InboxFilters, reader: User | None = None) -> QuerySet[Flag]:
    """The flags behind the problem filters: of the problem, raised in the days, and not
    a false positive (as `reader` sees the status: a blind reviewer's view, qa_selectors)."""
    f = filters
    flags = Flag.objects.all()
    if f.problem:
        q = problem_q(f.problem)
        flags = flags.filter(q) if q is not None else flags.none()
    if f.flagged_since:
        flags = flags.filter(raised_at__gte=day_start(f.flagged_since))
    if f.flagged_until and f.flagged_until < date.max:
        flags = flags.filter(raised_at__lt=day_start(f.flagged_until + timedelta(days=1)))
    dismissed = (Q(status=Flag.Status.FALSE_POSITIVE) if reader is None
                 else flag_status_q(user=reader, status=Flag.Status.FALSE_POSITIVE))
    return flags.exclude(dismissed)


def _encode(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BIGINT = 2**63  # columns are 64-bit; SQLite cannot even bind a larger Python int


def cursor_int(value: Any) -> int:
    """An integer a cursor may hold: a JSON integer that fits a 64-bit column."""
    if type(value) is not int or not -BIGINT <= value < BIGINT:
        raise ValueError("not a 64-bit integer")
    return value


def cursor_datetime(value: datetime) -> datetime:
    """A moment a cursor may hold: with its zone, and one that UTC can hold (the year-1
    and year-9999 edges overflow when the database driver converts them)."""
    if value.utcoffset() is None:
        raise ValueError("no time zone")
    return value.astimezone(UTC).astimezone(value.tzinfo)


def _decode(cursor: str, sort: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        expected = 3 if sort == "severity" else 2
        if not isinstance(values, list) or len(values) != expected:
            raise ValueError("shape")
        values[-2] = cursor_datetime(datetime.fromisoformat(values[-2]))
        values[-1] = cursor_int(values[-1])
        if sort == "severity":
            values[0] = cursor_int(values[0])
        return values
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError) as exc:
        raise BadCursor("this page link is not valid any more; start from the first page") \
            from exc


def _after(values: list[Any], sort: str) -> TupleLessThan:
    """Rows strictly after a cursor in the page order (keyset: no OFFSET). A row comparison,
    `(rank, last_activity_at, id) < (...)`, which PostgreSQL turns into an index condition
    on the sort's index (an OR of columns would scan from the top and discard)."""
    columns = ["last_activity_at", "id"]
    if sort == "severity":
        columns = ["open_flag_rank", *columns]
    return TupleLessThan(Tuple(*[F(c) for c in columns]), tuple(values))


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


def _cursor_of(conversation: Conversation, sort: str) -> str:
    key = [conversation.last_activity_at.isoformat(), conversation.pk]
    return _encode([conversation.open_flag_rank, *key] if sort == "severity" else key)


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
    after = _decode(cursor, sort) if cursor else None
    if not (masked and filters.q):
        conversations = list((qs.filter(_after(after, sort)) if after else qs)[: size + 1])
        more = len(conversations) > size
        conversations = conversations[:size]
        next_cursor = _cursor_of(conversations[-1], sort) if more and conversations else ""
    else:
        conversations, next_cursor, scanned = [], "", 0
        while True:
            chunk = list((qs.filter(_after(after, sort)) if after else qs)[: size + 1])
            scanned += len(chunk)
            conversations += conversations_masked_match(conversations=chunk, q=filters.q)
            if len(conversations) > size:
                conversations = conversations[:size]
                next_cursor = _cursor_of(conversations[-1], sort)
                break
            if len(chunk) <= size:
                break  # no more candidates
            last = chunk[-1]
            after = _decode(_cursor_of(last, sort), sort)
            if scanned >= MASKED_SCAN:
                next_cursor = _cursor_of(last, sort)  # go on from there on the next page
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


# --- replay -----------------------------------------------------------------------------


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
