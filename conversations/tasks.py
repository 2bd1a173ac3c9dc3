from celery import shared_task

from .services import message_statuses_reconcile


@shared_task(acks_late=True, ignore_result=True)
def apply_raw_events() -> dict[str, int]:
    """Apply pending raw events (woken after webhooks commit, and by beat) until none is
    left; hands over to a fresh task after APPLIER_TASK_SECONDS."""
    from .applier import raw_events_apply
    from .conf import auditor_settings

    counts = raw_events_apply(max_seconds=auditor_settings.APPLIER_TASK_SECONDS)
    if counts.batches and counts.deferred == 0 and not counts.errors:
        from .models import RawEvent

        if RawEvent.objects.filter(status=RawEvent.Status.PENDING).exists():
            apply_raw_events.apply_async(retry=False)  # time ran out with work left
    return {"processed": counts.processed, "failed": counts.failed,
            "deferred": counts.deferred}


@shared_task(acks_late=True)
def reconcile_delivery_statuses() -> int:
    """Periodic catch-up: join status reports that still wait for their message."""
    return message_statuses_reconcile()


@shared_task(acks_late=True)
def purge_retention() -> dict[str, int]:
    """Daily: purge content older than RETENTION_DAYS; nothing when it is not set."""
    from .conf import auditor_settings
    from .retention import retention_cutoff, retention_purge

    if auditor_settings.RETENTION_DAYS is None:
        return {}
    return retention_purge(cutoff=retention_cutoff()).counts
