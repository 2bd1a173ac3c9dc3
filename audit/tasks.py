"""Celery tasks: thin wrappers queued by beat; the work is in audit.rollups (the dashboards'
daily rollups, every minute) and audit.qa_queues (the QA review queues, every 15 minutes)."""

from celery import shared_task

from .qa_queues import queues_fill
from .rollups import rollups_refresh


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def refresh_dashboard_rollups() -> int:
    """Rebuild the dashboard rollups of the days marked since the last run. Idempotent: a
    redelivered or overlapping run rebuilds a day again with the same result."""
    return len(rollups_refresh())


@shared_task(acks_late=True)
def fill_qa_queues() -> dict[str, int | str]:
    """Add newly matching conversations to every active queue (idempotent); a queue that
    fails is logged and reported by name, the others are filled."""
    return queues_fill()
