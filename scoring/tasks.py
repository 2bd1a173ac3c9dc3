"""Celery tasks: thin wrappers over services. acks_late + reject_on_worker_lost (settings):
a worker killed mid-task has its task redelivered, and re-running a task changes nothing."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from celery.signals import worker_init
from django.utils import timezone

from conversations.conf import auditor_settings

from . import selectors, services


@worker_init.connect
def scorers_warm_on_start(**_kwargs: object) -> None:
    """Models loaded and frozen out of the garbage collector's way once per worker, before
    any prefork child forks (services.scorers_warm)."""
    services.scorers_warm()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def score_messages(message_ids: list[int]) -> int:
    return services.messages_score(message_ids=message_ids)


@shared_task(acks_late=True)
def score_catch_up() -> int:
    """Periodic: queue messages of the last SCORING_CATCHUP_DAYS lacking current scores."""
    since = timezone.now() - timedelta(days=auditor_settings.SCORING_CATCHUP_DAYS)
    ids = selectors.message_ids_to_score(tone=services.scorer_set_current(), since=since)
    return services.message_ids_enqueue(message_ids=ids)


@shared_task(acks_late=True)
def scores_daily() -> dict:
    """Periodic (daily, and again during the day): aggregates and drift detection."""
    return services.scores_daily_roll()
