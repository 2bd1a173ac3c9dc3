"""SLA policies and their calendars: which limits a handoff is held to.

A handoff keeps a snapshot of its policy (`policy_snapshot`), so editing a policy changes
new handoffs, not the deadlines already promised. `policies_load` reads the active rows
once per batch; `policy_pick` chooses among them in memory (the machine's decide step).
"""

import functools
import json
from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from conversations.conf import auditor_settings

from .business_time import Calendar
from .models import SLAPolicy


def sla_policy_resolve(*, channel: str, queue: str = "") -> dict[str, Any]:
    """The policy in force for a channel and queue, as a snapshot kept on the handoff.

    The most specific active SLAPolicy row wins (queue before channel); without one, the
    HANDOFF_AUDITOR["SLA_POLICIES"] defaults for the channel (or "*")."""
    return sla_policies_resolve(channels=[channel], queue=queue)[channel]


def sla_policies_resolve(*, channels: Iterable[str], queue: str = "") -> dict[str, dict[str, Any]]:
    """sla_policy_resolve for several channels, in one query."""
    channels = set(channels)
    candidates = list(
        SLAPolicy.objects.filter(active=True)
        .filter(Q(channel__in=[*channels, ""]), Q(queue=queue) | Q(queue=""))
        .select_related("calendar")
    )
    return {channel: policy_pick(candidates, channel=channel, queue=queue) for channel in channels}


def policies_load() -> list[SLAPolicy]:
    """Every active policy (a handful of rows), for policy_pick."""
    return list(SLAPolicy.objects.filter(active=True).select_related("calendar"))


def policy_pick(candidates: list[SLAPolicy], *, channel: str, queue: str = "") -> dict[str, Any]:
    """The snapshot of the most specific of `candidates` for a channel and queue (in memory)."""
    fitting = [p for p in candidates if p.channel in (channel, "") and p.queue in (queue, "")]
    return _policy_snapshot(channel, fitting)


def _policy_snapshot(channel: str, candidates: list[SLAPolicy]) -> dict[str, Any]:
    best = max(candidates, key=lambda p: (bool(p.queue), bool(p.channel)), default=None)
    if best is not None:
        return {
            "id": best.pk,
            "name": best.name,
            "limits": best.limits(),
            "calendar": best.calendar.as_dict() if best.calendar else None,
            "auto_resolve": best.auto_resolve,
        }
    defaults = auditor_settings.SLA_POLICIES
    limits = defaults.get(channel) or defaults.get("*") or {}
    return {
        "id": None,
        "name": f"default ({channel if channel in defaults else '*'})",
        "limits": {k: limits.get(k) for k in ("requested", "queued", "assigned", "reply")},
        "calendar": auditor_settings.SLA_CALENDAR,
        "auto_resolve": bool(auditor_settings.SLA_AUTO_RESOLVE),
    }


@functools.lru_cache(maxsize=256)
def _calendar_cached(key: str) -> Calendar:
    return Calendar.from_dict(json.loads(key))


def policy_calendar(policy: dict[str, Any]) -> Calendar | None:
    """The Calendar of a policy snapshot (parsed once per distinct calendar)."""
    data = policy.get("calendar")
    return _calendar_cached(json.dumps(data, sort_keys=True)) if data else None


def _policy_ref(policy: dict[str, Any]) -> dict[str, Any]:
    return {"id": policy.get("id"), "name": policy.get("name")}
