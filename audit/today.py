"""The Today page's reads: what went wrong in a period, grouped by what happened, with
figures against the previous period and the open flags to act on first.

Definitions (docs/today.md and the page say them too):
- a **period** is today, yesterday or the last 7 days (today included), in the site's
  time zone; the **previous period** is the same number of days just before it;
- a **group** counts the conversations with a flag of that problem (audit.problems)
  raised in the period (flags are stamped when the problem began), false positives left
  out; it is counted through the inbox's own queryset, so it equals the rows its link shows;
- the **figures** are handoff_metrics' (handoffs requested in the period): handoffs,
  reached a human, median time to a human, SLA met rate = waits that ended within their
  limit / (those + waits that ran over it, open ones past their deadline included);
  conversations = conversations started in the period;
- **act on first**: open flags, most severe first, then the oldest.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Case, FloatField, IntegerField, Max, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from conversations.flag_text import duration_words, flag_kind_label, flag_summary
from conversations.models import FLAG_SEVERITY_RANK, Conversation, Flag
from handoffs.selectors import handoff_metrics

from .inbox_filters import InboxFilters, inbox_queryset, problem_flags
from .problems import ANY_HANDOFF, Problem, problems_all
from .qa_selectors import User, flag_status_q, flags_blind_mask

PERIODS = {"today": ("Today", 1, 0), "yesterday": ("Yesterday", 1, 1),
           "7d": ("Last 7 days", 7, 0)}
ACT_FIRST = 10


@dataclass(frozen=True)
class TodayPeriod:
    key: str
    label: str
    first: date
    last: date  # inclusive

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min,
                                tzinfo=timezone.get_current_timezone())

    def previous(self) -> "TodayPeriod":
        return TodayPeriod("previous", "previous period", self.first - timedelta(days=self.days),
                           self.first - timedelta(days=1))


def today_period(key: str, today: date | None = None) -> TodayPeriod:
    label, days, back = PERIODS.get(key) or PERIODS["today"]
    key = key if key in PERIODS else "today"
    last = (today or timezone.localdate()) - timedelta(days=back)
    return TodayPeriod(key, label, last - timedelta(days=days - 1), last)


def problem_link(period: TodayPeriod, problem: str) -> str:
    """The inbox showing a group's conversations."""
    query = {"problem": problem, "flagged_since": period.first.isoformat(),
             "flagged_until": period.last.isoformat(), "sort": "severity"}
    return f"{reverse('audit:inbox')}?{urlencode(query)}"


@dataclass
class Group:
    problem: Problem
    count: int
    link: str
    detail: str = ""  # a figure in words: "worst 2 h 14 min over"


@dataclass
class Figure:
    label: str
    value: Any
    previous: Any
    kind: str = "count"  # count | rate | duration
    better: str = "up"  # which way is good
    help: str = ""

    @property
    def shown(self) -> str:
        return _show(self.value, self.kind)

    @property
    def previous_shown(self) -> str:
        return _show(self.previous, self.kind)

    @property
    def change(self) -> str:
        """"+3", "−12 pts", "" when either side is missing."""
        if self.value is None or self.previous is None:
            return ""
        delta = self.value - self.previous
        if self.kind == "rate":
            points = round(100 * delta)
            return "same" if points == 0 else f"{'+' if points > 0 else '−'}{abs(points)} pts"
        if self.kind == "duration":
            if abs(delta) < 1:
                return "same"
            return f"{'+' if delta > 0 else '−'}{duration_words(delta)}"
        return "same" if delta == 0 else f"{'+' if delta > 0 else '−'}{abs(delta)}"

    @property
    def trend(self) -> str:
        """good | bad | "" (no change or nothing to compare)."""
        if (not self.better or self.value is None or self.previous is None
                or self.value == self.previous):
            return ""
        up = self.value > self.previous
        return "good" if up == (self.better == "up") else "bad"


def _show(value: Any, kind: str) -> str:
    if value is None:
        return "no data"
    if kind == "rate":
        return f"{round(100 * value)}%"
    if kind == "duration":
        return duration_words(value)
    return str(value)


@dataclass
class ActItem:
    flag: Flag
    label: str
    summary: str
    age: str


@dataclass
class Today:
    period: TodayPeriod
    groups: list[Group]
    other_groups: list[Group]
    any_handoff: Group
    figures: list[Figure]
    act_first: list[ActItem] = field(default_factory=list)
    open_flags: int = 0

    @property
    def other_count(self) -> int:
        return sum(g.count for g in self.other_groups)


def _worst_over(period: TodayPeriod, problem: Problem, reader: User | None) -> str:
    flags = problem_flags(filters=InboxFilters(problem=problem.key, flagged_since=period.first,
                                               flagged_until=period.last), reader=reader)
    worst = flags.aggregate(worst=Max(Cast(KeyTextTransform("over_by_seconds", "evidence"),
                                           FloatField())))["worst"]
    return f"worst {duration_words(worst)} over" if worst else ""


def _group(period: TodayPeriod, problem: Problem, reader: User | None) -> Group:
    filters = InboxFilters(problem=problem.key, flagged_since=period.first,
                           flagged_until=period.last)
    count = inbox_queryset(filters=filters, reader=reader).count()
    detail = _worst_over(period, problem, reader) if count and problem.key == "sla" else ""
    return Group(problem, count, problem_link(period, problem.key), detail)


def _figures(period: TodayPeriod, now: datetime) -> list[Figure]:
    def measure(p: TodayPeriod) -> dict[str, Any]:
        m = handoff_metrics(since=p.since, until=p.until, now=now)
        total = m[0] if m else None
        met = sum(s.met for s in total.sla.values()) if total else 0
        breached = sum(s.breached for s in total.sla.values()) if total else 0
        return {
            "conversations": Conversation.objects.filter(
                started_at__gte=p.since, started_at__lt=p.until).count(),
            "handoffs": total.handoffs if total else 0,
            "reached": total.reached_human if total else 0,
            "ttH": total.time_to_human_p50 if total else None,
            "sla": met / (met + breached) if met + breached else None,
        }

    now_, before = measure(period), measure(period.previous())
    return [
        Figure("SLA met", now_["sla"], before["sla"], "rate",
               help="waits that ended within their limit, of all waits with a limit "
                    "(open waits past their deadline count as missed)"),
        Figure("Handoffs requested", now_["handoffs"], before["handoffs"], better="",
               help="handoffs to a human requested in the period"),
        Figure("Reached a human", now_["reached"], before["reached"],
               help="handoffs requested in the period that a human took up"),
        Figure("Median time to a human", now_["ttH"], before["ttH"], "duration", better="down",
               help="from the request to the first human reply, handoffs that got one"),
        Figure("Conversations", now_["conversations"], before["conversations"], better="",
               help="conversations started in the period"),
    ]


SEVERITY_ORDER = Case(*[When(severity=s, then=Value(r)) for s, r in FLAG_SEVERITY_RANK.items()],
                      default=Value(0), output_field=IntegerField())


def _act_first(reader: User | None, now: datetime) -> tuple[list[ActItem], int]:
    flags = Flag.objects.filter(status=Flag.Status.OPEN) if reader is None else \
        Flag.objects.filter(flag_status_q(user=reader, status=Flag.Status.OPEN))
    total = flags.count()
    rows = list(flags.annotate(rank=SEVERITY_ORDER).order_by("-rank", "raised_at", "id")
                .select_related("conversation")[:ACT_FIRST])
    if reader is not None:
        rows = flags_blind_mask(user=reader, flags=rows)
    return [ActItem(f, flag_kind_label(f.kind), flag_summary(f),
                    duration_words((now - f.raised_at).total_seconds())) for f in rows], total


def today_read(*, period: TodayPeriod, reader: User | None = None,
               now: datetime | None = None) -> Today:
    now = now or timezone.now()
    groups = [_group(period, p, reader) for p in problems_all()]
    act, total = _act_first(reader, now)
    any_group = _group(period, Problem(ANY_HANDOFF, "Any handoff problem", ""), reader)
    return Today(
        period=period,
        groups=[g for g in groups if g.problem.handoff],
        other_groups=[g for g in groups if not g.problem.handoff],
        any_handoff=any_group, figures=_figures(period, now), act_first=act, open_flags=total,
    )
