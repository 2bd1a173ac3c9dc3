from celery import shared_task

from .services import message_statuses_reconcile


@shared_task(acks_late=True)
def reconcile_delivery_statuses() -> int:
    """Periodic catch-up: join status reports that still wait for their message."""
    return message_statuses_reconcile()
