"""The dashboards' daily rollups: per day (site time zone) and channel, the sums and counts
behind every figure of the dashboards page, so that the page reads a few hundred rows
whatever the data volume (audit.dashboard_selectors.dashboard).

- ConversationDaily / ReleaseDaily: dashboard_selectors.breakdown_rows for one day (the
  conversations started that day; every figure a count or a sum, so days add up).
- QualityDaily: answer-quality flag kinds per channel, model and prompt version
  (audit.quality_figures).
- HandoffDaily: the handoffs requested that day, per channel, with what makes distinct
  counts, percentiles and SLA figures exact over any set of days (see the model).

When: the services that change the facts mark days (conversations.services
.dashboard_days_mark: ingest per batch, the handoff machine, the sweep, rebuild_handoffs);
`rollups_refresh` (Celery beat, every minute) rebuilds the marked days;
`manage.py rebuild_dashboard_rollups [--days N]` rebuilds a range (after a bulk load, a
change of TIME_ZONE, or to repair).
"""

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from conversations.models import Conversation, DashboardDirtyDay
from conversations.services import dashboard_days_mark
from handoffs.machine import State
from handoffs.models import Handoff, Wait

from .dashboard_selectors import FLOATS, SLA_KINDS, Period, _jit_off, breakdown_rows
from .models import ConversationDaily, DashboardDay, HandoffDaily, OutcomeDaily, ReleaseDaily
from .outcome_rollups import outcome_day_rows
from .quality_figures import quality_day_rows
from .quality_models import QualityDaily

_ROLLUP_LOCK = 0x524F4C4C  # "ROLL": pg_advisory_xact_lock(key, day) per day being built


def rollup_day_build(day: date) -> set[date]:
    """Replace the rollup rows of one day with what the facts say now. Returns the earlier
    days whose outcome figures (repeat contact) the day's new conversations changed."""
    period = Period(days=1, first=day, last=day)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Two refreshes of one day (beat and the command) queue instead of colliding
            # on the rows' unique keys.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                               [_ROLLUP_LOCK, day.toordinal()])
        _jit_off()
        rows = breakdown_rows(period)
        cells = _handoff_cells(period)
        built = DashboardDay.objects.filter(day=day).values_list("built_at", flat=True).first()
        outcomes, changed = outcome_day_rows(day, built_at=built)
        quality = quality_day_rows(day)
        for model in (ConversationDaily, ReleaseDaily, HandoffDaily, OutcomeDaily,
                      QualityDaily):
            model.objects.filter(day=day).delete()
        ConversationDaily.objects.bulk_create(
            ConversationDaily(day=day, channel=channel, bucket=bucket, conversations=n,
                              resolved=resolved or 0, eligible=eligible or 0, cost=cost,
                              rated=rated, csat_sum=csat_sum)
            for kind, channel, bucket, n, resolved, eligible, cost, rated, csat_sum in rows
            if kind == "channel")
        ReleaseDaily.objects.bulk_create(
            ReleaseDaily(day=day, kind=kind, release=release, channel=channel, conversations=n,
                         handed_off=handed_off or 0, dropped=dropped or 0, cost=cost,
                         rated=rated, csat_sum=csat_sum)
            for kind, release, channel, n, handed_off, dropped, cost, rated, csat_sum in rows
            if kind != "channel")
        HandoffDaily.objects.bulk_create(HandoffDaily(day=day, **cell) for cell in cells)
        OutcomeDaily.objects.bulk_create(outcomes, batch_size=500)
        QualityDaily.objects.bulk_create(quality, batch_size=500)
        DashboardDay.objects.update_or_create(day=day, defaults={"built_at": timezone.now()})
    return changed


def _handoff_cells(period: Period) -> list[dict[str, Any]]:
    """The HandoffDaily rows of one day: three queries (the day's handoffs, the other
    handoffs of their conversations, their SLA waits)."""
    handoffs = list(Handoff.objects.filter(
        requested_at__gte=period.since, requested_at__lt=period.until).values_list(
        "conversation_id", "channel", "state", "engaged_at", "dropped_at", "stalled_count",
        "time_to_human", "time_to_human_business"))
    # Conversations with handoffs in more than one cell (day x channel): "shared".
    cells_of: dict[int, set[tuple[date, str]]] = {}
    for conversation_id, channel, requested_at in Handoff.objects.filter(
            conversation_id__in={h[0] for h in handoffs}).values_list(
            "conversation_id", "channel", "requested_at"):
        cells_of.setdefault(conversation_id, set()).add(
            (timezone.localdate(requested_at), channel))
    shared = {c for c, cells in cells_of.items() if len(cells) > 1}
    cells: dict[str, dict[str, Any]] = {}
    sets: dict[str, dict[str, set[int]]] = {}
    for (conversation_id, channel, state, engaged_at, dropped_at, stalled, tth,
         tth_business) in handoffs:
        cell = cells.setdefault(channel, {
            "channel": channel, "handoffs": 0, "reached": 0, "stalled": 0,
            "time_to_human": [], "time_to_human_business": [], "sla": {}})
        found = sets.setdefault(channel, {"conversations": set(), "dropped": set(),
                                          "returned": set()})
        cell["handoffs"] += 1
        found["conversations"].add(conversation_id)
        if dropped_at is not None:
            found["dropped"].add(conversation_id)
        if state == State.RETURNED:
            found["returned"].add(conversation_id)
        if stalled > 0:
            cell["stalled"] += 1
        if engaged_at is not None:
            cell["reached"] += 1
            for name, value in (("time_to_human", tth), ("time_to_human_business", tth_business)):
                if value is not None:
                    cell[name].append(value)
    for channel, found in sets.items():
        cell = cells[channel]
        for name, ids in found.items():
            cell[name] = len(ids)
        cell["shared"] = {name: sorted(ids & shared) for name, ids in found.items()
                          if ids & shared}
    kinds = {kind: n for n, kind in enumerate(SLA_KINDS)}
    open_waits: dict[str, list[float]] = {channel: [] for channel in cells}
    for channel, kind, met, ended_at, deadline_at in Wait.objects.filter(
            handoff__requested_at__gte=period.since, handoff__requested_at__lt=period.until,
            allowed_seconds__isnull=False).values_list(
            "handoff__channel", "kind", "met", "ended_at", "deadline_at"):
        sla = cells[channel]["sla"].setdefault(kind, {"waits": 0, "met": 0, "breached": 0})
        sla["waits"] += 1
        if met is True:
            sla["met"] += 1
        if met is False:
            sla["breached"] += 1
        elif ended_at is None and deadline_at is not None:
            # Breached once the clock passes the deadline (handoff_metrics' rule, any `now`).
            open_waits[channel] += [kinds[kind], deadline_at.timestamp()]
    for channel, cell in cells.items():
        cell["sla_open"] = _pack(open_waits[channel])
        for name in ("time_to_human", "time_to_human_business"):
            cell[name] = _pack(cell[name])
    return list(cells.values())


def _pack(values: list[float]) -> bytes:
    return numpy.asarray(values, dtype=FLOATS).tobytes()


def rollups_refresh(*, on_progress: Callable[[date], Any] | None = None) -> list[date]:
    """Rebuild the days marked since the last refresh (Celery beat, every minute). The marks
    are deleted before the days are read, so a change committed meanwhile marks its day
    again (conversations.services.dashboard_days_mark) and the next refresh takes it."""
    days = list(DashboardDirtyDay.objects.order_by("day").values_list("day", flat=True))
    _rebuild(days, on_progress)
    return days


def rollups_rebuild(*, days: int | None = None,
                    on_progress: Callable[[date], Any] | None = None,
                    on_start: Callable[[int], Any] | None = None) -> list[date]:
    """Rebuild the last `days` days up to today, or (None) every day since the first
    conversation. Idempotent: a day's rows are replaced, never added to."""
    today = timezone.localdate()
    if days is None:
        first = Conversation.objects.aggregate(at=Min("started_at"))["at"]
        start = timezone.localdate(first) if first else today
    else:
        start = today - timedelta(days=max(days, 1) - 1)
    wanted = [start + timedelta(days=i) for i in range((today - start).days + 1)]
    # Days marked outside the range (a handoff dated later than today) come along.
    wanted = sorted({*wanted, *DashboardDirtyDay.objects.filter(day__gt=today).values_list(
        "day", flat=True)})
    if on_start:
        on_start(len(wanted))
    _rebuild(wanted, on_progress)
    return wanted


def _rebuild(days: list[date], on_progress: Callable[[date], Any] | None) -> None:
    DashboardDirtyDay.objects.filter(day__in=days).delete()
    changed: set[date] = set()
    for n, day in enumerate(days):
        try:
            changed |= rollup_day_build(day)
        except BaseException:
            dashboard_days_mark(days=days[n:])  # not lost: the next refresh tries again
            raise
        if on_progress:
            on_progress(day)
    # Earlier days whose repeat contacts changed, unless this run already built them after
    # the conversations that changed them were there (days are built in order).
    if changed - set(days):
        dashboard_days_mark(days=sorted(changed - set(days)))
