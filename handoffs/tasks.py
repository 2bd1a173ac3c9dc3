"""Celery tasks: thin wrappers queued by beat; the work is in services."""

from celery import shared_task

from .sweep import handoffs_sweep


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def sweep_handoffs() -> dict[str, int]:
    """Raise handoff_stalled / handoff_dropped for what is due. Idempotent: a redelivered or
    overlapping sweep finds nothing left to flag."""
    result = handoffs_sweep()
    return {"stalled": result.stalled, "window_expired": result.window_expired}
