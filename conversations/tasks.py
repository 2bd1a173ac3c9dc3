from celery import shared_task

from .services import message_statuses_reconcile


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
