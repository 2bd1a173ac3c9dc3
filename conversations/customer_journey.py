"""One customer across channels: the `channel_switch_after_failure` finding, and the
journey metric built on it.

The rule (pure: `channel_switch_decide`): a customer whose handoff failed on one channel
(a `handoff_dropped` or `handoff_stalled` flag on that conversation) and who came back on
another channel (a conversation of theirs there that started after the failing one began
and within CHANNEL_SWITCH_WINDOW_HOURS of the failure) gets the finding on the conversation
they came back in, with the failure and the delay as evidence.

It is decided after the facts it needs are written, not in ingest's decide: the failure
flags are raised by the handoff machine on `journey_recorded` (after ingest wrote the
batch) and by the handoffs sweep (time passing, no event at all), and the conversations
compared are any of the customer's, not only the batch's. So it runs at the end of each
applied batch (services.events_apply) and of each sweep batch (handoffs.sweep), inside
their transactions: load the customers' conversations and failure flags, decide, raise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .conf import auditor_settings
from .flag_text import flag_sentence_register
from .flags import flag_raise
from .models import Conversation, Flag

FAILURES = (Flag.Kind.HANDOFF_DROPPED, Flag.Kind.HANDOFF_STALLED)
KIND = Flag.Kind.CHANNEL_SWITCH_AFTER_FAILURE


@dataclass(frozen=True)
class Thread:
    id: int
    customer_id: int
    channel: str
    started_at: datetime


@dataclass(frozen=True)
class Failure:
    flag_id: int
    conversation_id: int
    kind: str
    at: datetime


@dataclass(frozen=True)
class Switch:
    conversation_id: int  # where the customer came back
    evidence: dict


def channel_switch_decide(threads: Iterable[Thread], failures: Iterable[Failure],
                          window: timedelta) -> list[Switch]:
    """One finding per conversation the customer came back in: the earliest failure that
    explains it (see the module docstring)."""
    threads = list(threads)
    by_id = {t.id: t for t in threads}
    found: dict[int, Switch] = {}
    for failure in sorted(failures, key=lambda f: (f.at, f.flag_id)):
        failed = by_id.get(failure.conversation_id)
        if failed is None:
            continue
        for other in threads:
            if (other.customer_id != failed.customer_id or other.channel == failed.channel
                    or other.id in found or other.started_at <= failed.started_at
                    or other.started_at > failure.at + window):
                continue
            hours = max((other.started_at - failure.at).total_seconds(), 0) / 3600
            found[other.id] = Switch(other.id, {
                "failed_conversation": failed.id, "failed_channel": failed.channel,
                "failure": failure.kind, "failure_flag": failure.flag_id,
                "failed_at": failure.at.isoformat(),
                "came_back_channel": other.channel,
                "came_back_at": other.started_at.isoformat(),
                "hours_after_failure": round(hours, 2),
                "window_hours": window.total_seconds() / 3600,
            })
    return [found[k] for k in sorted(found)]


def channel_switch_check(*, conversation_ids: Iterable[int]) -> int:
    """Decide the rule for the customers of these conversations and raise what it finds
    (an open finding is refreshed, not doubled); returns how many were raised."""
    ids = [i for i in set(conversation_ids) if i is not None]
    if not ids:
        return 0
    customers = Conversation.objects.filter(pk__any=ids, customer__isnull=False).values(
        "customer_id")
    threads = [Thread(*row) for row in Conversation.objects.filter(
        customer_id__in=customers).values_list("id", "customer_id", "channel", "started_at")]
    by_customer: dict[int, set[str]] = {}
    for t in threads:
        by_customer.setdefault(t.customer_id, set()).add(t.channel)
    threads = [t for t in threads if len(by_customer[t.customer_id]) > 1]
    if not threads:
        return 0
    failures = [Failure(*row) for row in Flag.objects.filter(
        conversation_id__any=[t.id for t in threads], kind__in=FAILURES).values_list(
        "id", "conversation_id", "kind", "raised_at")]
    window = timedelta(hours=auditor_settings.CHANNEL_SWITCH_WINDOW_HOURS)
    switches = channel_switch_decide(threads, failures, window)
    if not switches:
        return 0
    conversations = Conversation.objects.in_bulk([s.conversation_id for s in switches])
    known = set(Flag.objects.filter(kind=KIND, conversation_id__any=conversations).values_list(
        "conversation_id", "evidence__failure_flag"))
    raised = 0
    for switch in switches:
        if (switch.conversation_id, switch.evidence["failure_flag"]) in known:
            continue  # decided before: a resolved or dismissed finding stays so
        flag_raise(conversation=conversations[switch.conversation_id], kind=KIND,
                   severity=Flag.Severity.MEDIUM, subject_type=Flag.SubjectType.CONVERSATION,
                   subject_id=switch.conversation_id, evidence=switch.evidence,
                   at=datetime.fromisoformat(switch.evidence["came_back_at"]))
        raised += 1
    return raised


def flag_sentence_channel_switch(evidence: dict) -> str:
    hours = evidence.get("hours_after_failure")
    failure = {"handoff_dropped": "was dropped",
               "handoff_stalled": "stalled"}.get(evidence.get("failure", ""), "failed")
    channel = dict(Conversation._meta.get_field("channel").choices)
    failed = channel.get(evidence.get("failed_channel", ""), "another channel")
    back = channel.get(evidence.get("came_back_channel", ""), "another channel")
    when = ("" if hours is None else
            " within the hour" if hours < 1 else f" {hours:.0f} hours later"
            if hours >= 1.5 else " an hour later")
    return (f"The customer's handoff on {failed} {failure}, and they came back on "
            f"{back}{when}.")


# This module's flag kind in words (conversations/flag_text.py's registry).
flag_sentence_register(KIND.value, flag_sentence_channel_switch)
