"""Replay: a conversation's handoff journey decided again from all its rows, in time order.

The machine applies each batch as it comes. When a batch brings a row dated before a row
the machine has already seen (out-of-order delivery: a resolve that overtook the agent's
replies, a customer message delayed by a provider), deciding only the new rows would make
the result depend on the order of arrival. So the conversation is replayed instead: its
derived rows (handoffs with their waits and log, asks for a human) are dropped and every
message and event goes through the same load → decide → write as one batch in time order.
That is the result an in-order delivery gives, whatever order the rows arrived in.

Flags are findings people work on (status, note, QA verdicts), so a replay keeps them: a
finding the replay raises again keeps its row (its id, its verdicts and any status a person
gave it) and takes the replay's evidence; a finding the replay no longer makes is deleted,
unless a person triaged it or a QA verdict refers to it, in which case it is resolved with
a note that says why.

`rebuild_handoffs` (a changed machine or policy applied to history) is the same replay.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Max
from django.utils import timezone

from conversations.dashboard_marks import DayMarks
from conversations.models import ConversationEvent, Flag, Message

from .flags import AUTO, DROPPED, MISSED, STALLED
from .machine import EVENT_TRIGGERS
from .models import Handoff, HumanAsk
from .services import handoff_days

MACHINE_KINDS = (STALLED, DROPPED, MISSED)
GONE_NOTE = ("No longer found: rows that arrived late, applied in time order, show the "
             "handoff went otherwise.")
# A parked flag waits out the replay under this status (never a real one): the machine's
# load and the one-active-flag constraint look only at open and acknowledged flags.
_PARKED = "replaying"

FlagKey = tuple[str, str, Any]


def late_conversations(batch: dict[int, datetime], *, message_ids: Iterable[int],
                       event_ids: Iterable[int]) -> set[int]:
    """The conversations of a batch (id -> the batch's earliest row there) that already
    hold a row the machine has seen dated at or after that: the batch arrived late."""
    if not batch:
        return set()
    # The latest row of each conversation besides the batch's own, then compared in Python:
    # one grouped read on the timeline index, whatever the batch's size (an OR of a
    # condition per conversation cost more to build and plan than to run).
    ids = list(batch)
    latest = dict(Message.objects.filter(conversation_id__any=ids)
                  .exclude(pk__any=list(message_ids)).order_by()
                  .values("conversation_id").annotate(latest=Max("sent_at"))
                  .values_list("conversation_id", "latest"))
    found = {cid for cid, at in latest.items() if at >= batch[cid]}
    rest = [cid for cid in ids if cid not in found]
    if rest:
        latest = dict(ConversationEvent.objects.filter(
            conversation_id__any=rest, type__in=list(EVENT_TRIGGERS)
        ).exclude(pk__any=list(event_ids)).order_by()
            .values("conversation_id").annotate(latest=Max("occurred_at"))
            .values_list("conversation_id", "latest"))
        found |= {cid for cid, at in latest.items() if at >= batch[cid]}
    # Retention emptied some conversations' text: replaying them would not find the asks for
    # a human again. They keep what the machine decided when the text was there.
    if found:
        found -= set(Message.objects.filter(conversation_id__any=found, purged_at__isnull=False)
                     .values_list("conversation_id", flat=True).distinct())
    return found


Parked = dict[tuple, tuple[Flag, str]]


def replay_prepare(conversation_ids: Iterable[int]) -> tuple[
        Parked, list[Message], list[ConversationEvent], DayMarks]:
    """Set the conversations' flags aside, drop their derived rows and return every row to
    decide again (then `replay_finish`), with the dashboard days of the handoffs about to
    go. Inside the caller's transaction."""
    ids = sorted(set(conversation_ids))
    parked = _flags_park(ids)
    days = handoff_days(ids)
    Handoff.objects.filter(conversation_id__any=ids).delete()
    HumanAsk.objects.filter(conversation_id__any=ids).delete()
    messages = list(Message.objects.filter(conversation_id__any=ids).order_by("sent_at", "id"))
    events = list(ConversationEvent.objects.filter(conversation_id__any=ids)
                  .order_by("occurred_at", "id"))
    return parked, messages, events, days


def replay_finish(conversation_ids: Iterable[int], parked: Parked) -> None:
    """After the replay's plan is written: each parked flag takes over the finding the
    replay raised again, or goes (see the module's docstring)."""
    _flags_reconcile(sorted(set(conversation_ids)), parked)


def _handoff_numbers(ids: list[int]) -> dict[int, int]:
    return dict(Handoff.objects.filter(conversation_id__any=ids).values_list("pk", "number"))


def _key(flag: Flag, numbers: dict[int, int]) -> FlagKey:
    if flag.subject_type == Flag.SubjectType.HANDOFF:
        return (flag.kind, flag.subject_type, numbers.get(flag.subject_id))
    return (flag.kind, flag.subject_type, flag.subject_id)


def _flags_park(ids: list[int]) -> Parked:
    """The machine's flags of these conversations, by finding, each with its status; set
    aside (status `replaying`) so the replay raises its findings afresh."""
    numbers = _handoff_numbers(ids)
    flags = list(Flag.objects.filter(conversation_id__any=ids, kind__in=MACHINE_KINDS)
                 .order_by("raised_at", "id"))
    parked: Parked = {}
    for flag in flags:
        key = _key(flag, numbers)
        # Two rows of one finding (one resolved, one raised again later): the latest keeps
        # the key; earlier ones are matched by nothing and handled as gone.
        parked[(*key, flag.pk)] = (flag, flag.status)
    if flags:
        Flag.objects.filter(pk__any=[f.pk for f in flags]).update(status=_PARKED)
    return parked


def _flags_reconcile(ids: list[int], parked: Parked) -> None:
    numbers = _handoff_numbers(ids)
    raised = list(Flag.objects.filter(conversation_id__any=ids, kind__in=MACHINE_KINDS)
                  .exclude(status=_PARKED).order_by("raised_at", "id"))
    by_key: dict[FlagKey, list[tuple[Flag, str]]] = {}
    for (*key, _pk), entry in parked.items():
        by_key.setdefault(tuple(key), []).append(entry)
    now = timezone.now()
    for new in raised:
        olds = by_key.get(_key(new, numbers))
        if not olds:
            continue
        old, status = olds.pop()  # the latest row of that finding
        _flag_take_over(old, status, new)
    for olds in by_key.values():
        for old, status in olds:
            _flag_gone(old, status, now)


def _flag_take_over(old: Flag, status: str, new: Flag) -> None:
    """The old row stays (its id, verdicts and a person's triage) with the replay's finding."""
    fields = {"severity": new.severity, "subject_id": new.subject_id,
              "evidence": new.evidence, "raised_at": new.raised_at}
    # A person's word stands (false positive, resolved by hand, acknowledged while the
    # finding still holds); what the machine settles itself, it settles again.
    if old.status_changed_by not in ("", AUTO) and (
        status not in Flag.ACTIVE_STATUSES or new.status in Flag.ACTIVE_STATUSES
    ):
        fields["status"] = status
    else:
        fields.update(status=new.status, status_changed_at=new.status_changed_at,
                      status_changed_by=new.status_changed_by, note=new.note)
    new.delete()
    Flag.objects.filter(pk=old.pk).update(**fields)


def _flag_gone(old: Flag, status: str, now: datetime) -> None:
    keep = old.status_changed_by not in ("", AUTO) or old.qa_verdicts.exists()
    if not keep:
        old.delete()
        return
    Flag.objects.filter(pk=old.pk).update(
        status=Flag.Status.RESOLVED if status in Flag.ACTIVE_STATUSES else status,
        status_changed_at=now if status in Flag.ACTIVE_STATUSES else old.status_changed_at,
        status_changed_by=AUTO if status in Flag.ACTIVE_STATUSES else old.status_changed_by,
        note="\n".join(n for n in (old.note, GONE_NOTE) if n),
    )
