"""Thin Celery tasks: each calls a service. Beat entries are in config/settings.py."""

from celery import shared_task

from .conf import alerts_setting
from .delivery import deliveries_sweep, delivery_attempt, digests_build
from .services import alerts_evaluate, alerts_evaluate_flags


@shared_task(ignore_result=True)
def evaluate_alert_rules() -> int:
    return alerts_evaluate()


@shared_task(ignore_result=True)
def evaluate_flag_rules() -> int:
    return alerts_evaluate_flags()


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=None)
def deliver(self, delivery_id: int) -> bool:
    """Send one delivery; on failure Celery retries it after the backoff the service chose
    (the row keeps next_attempt_at too, so a lost retry is found by the sweep)."""
    attempt = delivery_attempt(delivery_id=delivery_id)
    if attempt is not None and attempt.retry_in is not None:
        raise self.retry(countdown=attempt.retry_in,
                         queue=alerts_setting("ALERTS_QUEUE") or None)
    return bool(attempt and attempt.sent)


@shared_task(ignore_result=True)
def send_due_deliveries() -> int:
    """Beat, every 15 s: send what is due (retries, quiet hours over, a killed worker's
    deliveries, a lost broker message) in claimed batches, for at most
    ALERTS_SWEEP_SECONDS; what is left waits for the next sweep."""
    return deliveries_sweep()


@shared_task(ignore_result=True)
def send_digests(period: str) -> int:
    return len(digests_build(period=period))
