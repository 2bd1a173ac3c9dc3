"""What the handoff machine's parts share: the flag kinds they raise and the dashboard
marks of handoffs.

The machine's ingest path (load → decide → write) is handoffs/journey.py; the sweep, what
only the passing of time proves, is handoffs/sweep.py; the rules both use (waits ended,
evidence, notes) are in flags.py, the SLA policies in policies.py, `rebuild_handoffs` in
rebuild.py.
"""

from collections.abc import Iterable

from conversations.dashboard_marks import DayMarks

from .flags import DROPPED, MISSED, STALLED, WINDOW_EXPIRED  # noqa: F401 - the vocabulary
from .models import Handoff
from .policies import policy_calendar, sla_policy_resolve  # noqa: F401 - bench/ reads them


def handoff_days(conversation_ids: Iterable[int]) -> DayMarks:
    """The dashboard days of these conversations: their start days and the request days of
    all their handoffs (a new handoff changes what its conversation's other handoff days
    share), read now (before a replay drops the handoffs)."""
    ids = sorted(set(conversation_ids))
    if not ids:
        return DayMarks()
    return DayMarks().add(ids, Handoff.objects.filter(conversation_id__any=ids).values_list(
        "requested_at", flat=True))


def handoff_days_mark(conversation_ids: Iterable[int]) -> None:
    """Mark `handoff_days`: one look-up and one upsert."""
    handoff_days(conversation_ids).write()
