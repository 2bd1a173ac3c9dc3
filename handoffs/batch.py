"""Set-based journey work for PostgreSQL batches: handoffs a human is already on.

In a busy deployment most of what the machine sees is the middle of an engaged handoff:
customer messages that start a reply wait, human replies that end it (late ones raise a
handoff_stalled flag that the reply clears), AI messages that change nothing. One by one
(`services._conversation_apply`) that is a few ORM statements per message. Here a batch's
conversations whose handoff is `engaged` and whose items are only messages (no handoff or
conversation event, no customer's ask for a human being watched) are decided in memory
from what `journey_apply` loaded for the whole batch, with the same functions the
per-row path uses (`wait_end`, `stalled_flag_decide`, `stall_clear_note`, ...), and
written in a few statements: the new waits in one INSERT, the ended ones in one UPDATE,
the handoffs' clocks and stall counts in one UPDATE, the flags in one INSERT and one
UPDATE, the conversations' flag rank once. Everything else (a handoff opening, moving,
ending, asks, catch-up) stays on the per-row path, which is the reference:
tests/test_handoff_batch.py applies the same input both ways and compares every row.

Runs under the conversation row locks journey_apply takes for the whole batch, so
concurrent batches touching one conversation are serialized as on the per-row path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from conversations.conf import auditor_settings
from conversations.models import Channel, Flag

# services imports this module; the module object resolves its names when called.
from . import services
from .machine import State
from .models import Handoff, Wait

if TYPE_CHECKING:
    from .services import _Item


def set_based(item_count: int) -> bool:
    """PostgreSQL, a real batch, and the setting on (False: per row, e.g. to compare)."""
    return (
        item_count > 1
        and connection.vendor == "postgresql"
        and bool(auditor_settings.JOURNEY_SET_BASED)
    )


def engaged_plain(handoff: Handoff | None, items: list[_Item], *, asks_watched: bool) -> bool:
    """Whether a conversation's items only continue an engaged handoff: no trigger but
    human replies, no ask for a human watched (AI replies would count against it)."""
    return (
        handoff is not None
        and handoff.state == State.ENGAGED
        and handoff.engaged_at is not None
        and not asks_watched
        and all(i.event is None for i in items)
    )


@dataclass
class _HandoffWork:
    handoff: Handoff
    stalls: int = 0  # late waits ended: stalled_count += stalls
    clock_dirty: bool = False  # last_customer_message_at (and window) to store


@dataclass
class EngagedBatch:
    """The in-memory effects of the engaged conversations of one batch, then their writes."""

    handoffs: list[Handoff]
    seen: set[tuple[str, int]]
    work: list[_HandoffWork] = field(default_factory=list)
    new_waits: list[Wait] = field(default_factory=list)
    ended_waits: list[Wait] = field(default_factory=list)  # loaded open, ended now
    flags: dict[int, Flag] = field(default_factory=dict)  # handoff id -> active stalled flag
    new_flags: list[Flag] = field(default_factory=list)
    changed_flags: dict[int, Flag] = field(default_factory=dict)  # loaded ones, by pk
    flagged_conversations: set[int] = field(default_factory=set)
    refreshed_new: list[Flag] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.flags = services.stalled_flags_active(h.pk for h in self.handoffs)

    def apply(self, handoff: Handoff, items: list[_Item]) -> None:
        """One conversation's items, in time order, as _conversation_apply would."""
        work = _HandoffWork(handoff)
        self.work.append(work)
        for item in items:
            message = item.message
            if services._is_human_reply(message):
                if (services.Source.MESSAGE, message.pk) in self.seen:
                    continue
                if message.sent_at >= handoff.requested_at:
                    self._human_reply(work, message.sent_at)
            elif services._is_customer(message):
                self._customer(work, message)
            # An AI reply while engaged, with no ask watched, changes nothing.

    def _customer(self, work: _HandoffWork, message: Any) -> None:
        """services._customer_waits, in memory."""
        handoff, at = work.handoff, message.sent_at
        if handoff.last_customer_message_at is None or at > handoff.last_customer_message_at:
            handoff.last_customer_message_at = at
            window_before = handoff.window_expires_at
            services._window_set(handoff)
            if handoff.window_expires_at != window_before or handoff.channel == Channel.WHATSAPP:
                work.clock_dirty = True
        if at < handoff.engaged_at:
            return
        open_waits = handoff._open_waits
        if message._has_wait or any(w.kind == Wait.Kind.REPLY for w in open_waits):
            return
        allowed = (handoff.policy.get("limits") or {}).get(Wait.Kind.REPLY)
        calendar = services.policy_calendar(handoff.policy)
        wait = Wait(
            handoff=handoff,
            kind=Wait.Kind.REPLY,
            started_at=at,
            allowed_seconds=allowed,
            business_hours=calendar is not None,
            deadline_at=None if allowed is None else services.business_add(at, allowed, calendar),
            source_message=message,
        )
        open_waits.append(wait)
        self.new_waits.append(wait)

    def _human_reply(self, work: _HandoffWork, at: datetime) -> None:
        """services._message_apply for a human reply while engaged: end the reply waits
        begun by then, raise what was late, clear the stalled flag."""
        handoff = work.handoff
        open_waits = handoff._open_waits
        ending = [w for w in open_waits if w.started_at <= at and w.kind == Wait.Kind.REPLY]
        if not ending:
            return
        calendar = services.policy_calendar(handoff.policy)
        for wait in ending:
            open_waits.remove(wait)
            if services.wait_end(wait, at=at, calendar=calendar):
                work.stalls += 1
                evidence = services.late_wait_evidence(wait, handoff, at=at)
                flag, created = services.stalled_flag_decide(
                    self.flags.get(handoff.pk), handoff, evidence, at
                )
                self._flag_changed(flag, created)
                self.flags[handoff.pk] = flag
            if wait.pk is not None:
                self.ended_waits.append(wait)
        if not handoff.policy.get("auto_resolve", True):
            return
        flag = self.flags.get(handoff.pk)
        if flag is not None and flag.evidence.get("state") == Wait.Kind.REPLY:
            flag.status = Flag.Status.RESOLVED
            flag.status_changed_at = timezone.now()
            flag.status_changed_by = services.AUTO
            flag.note = services.stall_clear_note(flag, at, services.reply_clear_note(at))
            self._flag_changed(flag, False)
            del self.flags[handoff.pk]

    def _flag_changed(self, flag: Flag, created: bool) -> None:
        self.flagged_conversations.add(flag.conversation_id)
        if created:
            self.new_flags.append(flag)
        elif flag.pk is not None:
            self.changed_flags[flag.pk] = flag
        elif flag.status in Flag.ACTIVE_STATUSES and flag not in self.refreshed_new:
            # Raised, then refreshed in this batch: one by one it is created, then updated
            # (updated_at = the refresh's time, which the INSERT's auto_now would replace).
            self.refreshed_new.append(flag)

    # --- writes ---------------------------------------------------------------------------

    def write(self) -> None:
        if self.new_waits:
            Wait.objects.bulk_create(self.new_waits)
        if self.ended_waits:
            _execute(_WAITS_END, [
                {"id": w.pk, "ended_at": w.ended_at, "waited_seconds": w.waited_seconds,
                 "met": w.met, "stalled_at": w.stalled_at}
                for w in self.ended_waits
            ])
        rows = [
            {"id": w.handoff.pk, "stalls": w.stalls, "clock": w.clock_dirty,
             "last_customer_message_at": w.handoff.last_customer_message_at,
             "window_expires_at": w.handoff.window_expires_at}
            for w in self.work
            if w.stalls or w.clock_dirty
        ]
        if rows:
            _execute(_HANDOFFS_UPDATE, rows)
        self._flags_write()

    def _flags_write(self) -> None:
        if self.new_flags:
            refreshed_at = {id(f): f.updated_at for f in self.refreshed_new}
            try:
                with transaction.atomic():
                    Flag.objects.bulk_create(self.new_flags)
            except IntegrityError:
                # An active stalled flag raised concurrently (the sweep): merge one by one.
                for flag in self.new_flags:
                    self._flag_merge(flag)
            else:
                for flag in self.refreshed_new:
                    flag.updated_at = refreshed_at[id(flag)]
                    self.changed_flags[flag.pk] = flag
        if self.changed_flags:
            Flag.objects.bulk_update(list(self.changed_flags.values()), _FLAG_FIELDS)
        if self.flagged_conversations:
            services.conversations_flag_rank_refresh(conversation_ids=self.flagged_conversations)

    @staticmethod
    def _flag_merge(flag: Flag) -> None:
        merged, _ = services.flag_raise(
            conversation=services.Conversation(pk=flag.conversation_id),
            kind=flag.kind,
            severity=flag.severity,
            subject_type=flag.subject_type,
            subject_id=flag.subject_id,
            evidence=flag.evidence,
            at=flag.raised_at,
        )
        if flag.status != merged.status:
            services.flag_set_status(
                flag=merged, status=flag.status, by=flag.status_changed_by, note=flag.note
            )


_FLAG_FIELDS = [
    "evidence", "severity", "updated_at", "status", "status_changed_at", "status_changed_by",
    "note",
]

_WAITS_END = """
UPDATE handoffs_wait w
   SET ended_at = v.ended_at, waited_seconds = v.waited_seconds, met = v.met,
       stalled_at = v.stalled_at
  FROM json_to_recordset(%s::json) AS v(
       id bigint, ended_at timestamptz, waited_seconds double precision, met boolean,
       stalled_at timestamptz)
 WHERE w.id = v.id
"""

# The clock is stored only where the per-row path would save it (WhatsApp, or a window
# that moved); stall counts add up in the database, as the per-row F() update does.
_HANDOFFS_UPDATE = """
UPDATE handoffs_handoff h
   SET last_customer_message_at = CASE WHEN v.clock THEN v.last_customer_message_at
                                       ELSE h.last_customer_message_at END,
       window_expires_at = CASE WHEN v.clock THEN v.window_expires_at
                                ELSE h.window_expires_at END,
       stalled_count = h.stalled_count + v.stalls
  FROM json_to_recordset(%s::json) AS v(
       id bigint, stalls integer, clock boolean, last_customer_message_at timestamptz,
       window_expires_at timestamptz)
 WHERE h.id = v.id
"""


def _execute(sql: str, rows: list[dict[str, Any]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, [orjson.dumps(rows).decode()])
