"""Periodic work of the audit app: filling the QA review queues (beat, every 15 minutes)."""

from celery import shared_task

from .qa_queues import queues_fill


@shared_task(acks_late=True)
def fill_qa_queues() -> dict[str, int]:
    """Add newly matching conversations to every active queue (idempotent)."""
    return queues_fill()
