"""Which conversations the inbox lists: its filters (InboxFilters) as one queryset, shared
by the inbox page, its API, the CSV export, the Today page, the QA queues and every report
drill-down (the `outcome=`, `qa=`, `agent=`/`queue=`/`team=` filters use the reports' own
rules, so a figure's link lists the conversations it counted)."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from alerts.selectors import alert_conversation_ids
from audit.outcome_rules import agent_q, outcome_filter
from audit.problems import problem_q
from audit.qa_selectors import User, flag_status_q
from conversations.models import AIStep, Conversation, Flag, Message, Outcome
from handoffs.models import Handoff
from scoring.models import BrandVoice
from scoring.qa_counted import reviews_matching
from scoring.selectors import brand_conversations


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
        qs = qs.filter(agent_q(f.agent))
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
