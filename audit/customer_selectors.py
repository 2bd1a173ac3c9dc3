"""Reads for the customer pages: one person's conversations on every channel in one
timeline, and the journey metric (customers back on another channel after a failed
handoff)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from conversations.customer_journey import FAILURES, KIND
from conversations.models import Conversation, Customer, Flag, Message

TIMELINE_LIMIT = 400  # messages on one page; the replay has the rest


@dataclass
class Lane:
    """One channel's conversations as bars on the customer's time axis (percent)."""

    channel: str
    label: str
    bars: list[dict] = field(default_factory=list)


@dataclass
class CustomerTimeline:
    customer: Customer
    conversations: list[Conversation]
    entries: list[tuple[datetime, str, object]]  # (at, "message" | "flag", row)
    lanes: list[Lane]
    start: datetime | None
    end: datetime | None
    truncated: bool


def customer_timeline(*, customer: Customer) -> CustomerTimeline:
    """Every conversation of the customer, their messages and flags in one time order."""
    conversations = list(customer.conversations.annotate(
        flag_count=Count("flags", filter=Q(flags__status__in=Flag.ACTIVE_STATUSES)))
        .order_by("started_at", "id"))
    ids = [c.pk for c in conversations]
    messages = list(Message.objects.filter(conversation_id__in=ids)
                    .select_related("conversation")
                    .order_by("-sent_at", "-id")[:TIMELINE_LIMIT + 1])
    truncated = len(messages) > TIMELINE_LIMIT
    flags = list(Flag.objects.filter(conversation_id__in=ids).select_related("conversation"))
    entries: list[tuple[datetime, str, object]] = [
        (m.sent_at, "message", m) for m in messages[:TIMELINE_LIMIT]]
    entries += [(f.raised_at, "flag", f) for f in flags]
    entries.sort(key=lambda e: (e[0], e[1], e[2].pk))
    start = min((c.started_at for c in conversations), default=None)
    end = max((c.last_activity_at for c in conversations), default=None)
    return CustomerTimeline(customer, conversations, entries,
                            _lanes(conversations, start, end), start, end, truncated)


def _lanes(conversations: list[Conversation], start: datetime | None,
           end: datetime | None) -> list[Lane]:
    if start is None or end is None:
        return []
    total = max((end - start).total_seconds(), 60.0)
    lanes: dict[str, Lane] = {}
    for c in conversations:
        lane = lanes.setdefault(c.channel, Lane(c.channel, c.get_channel_display()))
        left = 100 * (c.started_at - start).total_seconds() / total
        width = 100 * (c.last_activity_at - c.started_at).total_seconds() / total
        lane.bars.append({"conversation": c, "left": round(min(left, 99.0), 2),
                          "width": round(max(width, 1.0), 2),
                          "failed": c.flag_count > 0})
    return list(lanes.values())


@dataclass(frozen=True)
class SwitchMetric:
    """Of the customers whose handoff failed in the period, how many came back on another
    channel within the window (the `channel_switch_after_failure` findings)."""

    days: int
    failed_customers: int
    came_back: int

    @property
    def percent(self) -> int | None:
        if not self.failed_customers:
            return None
        return round(100 * self.came_back / self.failed_customers)


def channel_switch_metric(*, days: int = 30, now: datetime | None = None) -> SwitchMetric:
    since = (now or timezone.now()) - timedelta(days=days)
    failed = (Flag.objects.filter(kind__in=FAILURES, raised_at__gte=since,
                                  conversation__customer__isnull=False)
              .values("conversation__customer").distinct().count())
    back = (Flag.objects.filter(kind=KIND, raised_at__gte=since,
                                conversation__customer__isnull=False)
            .exclude(status=Flag.Status.FALSE_POSITIVE)
            .values("conversation__customer").distinct().count())
    return SwitchMetric(days, failed, back)


def customers_list(*, limit: int = 100) -> QuerySet[Customer]:
    """Customers seen on more than one conversation first, most recently active first."""
    return (Customer.objects.annotate(
        conversation_count=Count("conversations", distinct=True),
        channel_count=Count("conversations__channel", distinct=True),
        last_seen=Max("conversations__last_activity_at"),
        first_seen=Min("conversations__started_at"),
        switches=Count("conversations__flags", filter=Q(conversations__flags__kind=KIND),
                       distinct=True))
        .filter(conversation_count__gt=0)
        .order_by("-channel_count", "-last_seen", "-id")[:limit])
