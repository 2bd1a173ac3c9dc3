"""Dashboard marks: the days whose facts a batch changed (conversations.DashboardDirtyDay),
taken and rebuilt by audit's rollup task. Lives in the core so every app can mark without
importing audit."""

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from .models import Conversation, DashboardDirtyDay, Message


def dashboard_days_mark(
    *, conversation_ids: Iterable[int] = (), moments: Iterable[datetime] = (),
    days: Iterable[date] = (), moved_by: Sequence[Message] = (),
) -> None:
    """Mark the dashboard days a change touched: the start days (site time zone) of
    `conversation_ids` (and, for `moved_by` messages that moved a start back, the day it
    left), the days of `moments` (e.g. handoff requests), and `days`. One look-up and one
    `INSERT … ON CONFLICT DO NOTHING` in day order, inside the caller's transaction, and
    again after commit: the rollup task deletes the marks it takes before reading, so a
    mark that found the row present just before that delete still leaves one behind for
    data committed after the task's snapshot. An ingest batch gathers its marks in one
    `DayMarks` (ingest's, the handoff machine's) and writes them once."""
    marks = DayMarks()
    marks.add(conversation_ids, moments, days, moved_by)
    marks.write()


class DayMarks:
    """The dashboard days a batch changed, gathered from its parts and written once (one
    look-up, the day rows' locks in one statement in day order: two batches cannot
    deadlock on them)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.days: set[date] = set()
        self.moved_by: list[Message] = []

    def add(self, ids: Iterable[int] = (), moments: Iterable[datetime] = (),
            days: Iterable[date] = (), moved_by: Sequence[Message] = ()) -> "DayMarks":
        self.ids.update(ids)
        self.days.update(days)
        self.days.update(timezone.localdate(m) for m in moments)
        self.moved_by.extend(moved_by)
        return self

    def merge(self, other: "DayMarks") -> None:
        self.ids |= other.ids
        self.days |= other.days
        self.moved_by.extend(other.moved_by)

    def write(self) -> None:
        wanted = set(self.days)
        if self.ids:
            rows = Conversation.objects.filter(pk__any=sorted(self.ids)).values_list(
                "pk", "started_at", "message_count")
            starts = {pk: (at, count) for pk, at, count in rows}
            wanted.update(timezone.localdate(at) for at, _ in starts.values())
            wanted.update(_start_days_left(starts, self.moved_by))
        if not wanted:
            return
        ordered = sorted(wanted)  # one statement, in day order: two transactions cannot deadlock

        def mark() -> None:
            now = timezone.now()
            DashboardDirtyDay.objects.bulk_create(
                [DashboardDirtyDay(day=d, marked_at=now) for d in ordered],
                ignore_conflicts=True)

        mark()
        if connection.in_atomic_block:
            transaction.on_commit(mark, robust=True)


def _start_days_left(starts: dict[int, tuple[datetime, int]],
                     messages: Sequence[Message]) -> set[date]:
    """The days conversations started on before a batch's late messages moved their start
    back (a rollup of that day still counts them there). A conversation whose start is now
    one of the batch's messages' times, and which holds messages besides the batch's, may
    have moved: its old start was its earliest other message. One grouped look-up on the
    message timeline index, only for those (a conversation the batch opened has none)."""
    first: dict[int, datetime] = {}
    in_batch: dict[int, set[int]] = {}
    for m in messages:
        first[m.conversation_id] = min(first.get(m.conversation_id, m.sent_at), m.sent_at)
        in_batch.setdefault(m.conversation_id, set()).add(m.pk)
    moved = [cid for cid, at in first.items()
             if cid in starts and starts[cid][0] == at and starts[cid][1] > len(in_batch[cid])]
    if not moved:
        return set()
    earlier = (Message.objects.filter(conversation_id__any=moved)
               .exclude(pk__any=[m.pk for m in messages])
               .values("conversation_id").annotate(first=Min("sent_at")))
    return {day for row in earlier
            if (day := timezone.localdate(row["first"])) != timezone.localdate(
                starts[row["conversation_id"]][0])}

