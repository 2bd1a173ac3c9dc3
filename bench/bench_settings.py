"""Settings for the benchmarks' servers, appliers and Celery workers: config.settings, with
the scoring the applier queues after each commit sent to a queue no bench worker consumes.

The applier publishes its scoring tasks as in production (that cost is measured), but the
bench's Celery workers consume only the default queue, where the applier's own task
(conversations.tasks.apply_raw_events) goes: scoring is a separate budget (bench-scoring),
and on 2 cores it would take the CPU the applier is measured with. The scoring messages left
in Redis db 10 are flushed by the next run.

Used through DJANGO_SETTINGS_MODULE=bench_settings with bench/ on PYTHONPATH (see
ingest.server_env).
"""

from config.settings import *  # noqa: F403 - the host settings, then the bench's changes
from config.settings import HANDOFF_AUDITOR

SCORING_QUEUE = "bench-scoring-unconsumed"
HANDOFF_AUDITOR = {**HANDOFF_AUDITOR, "SCORING_QUEUE": SCORING_QUEUE}
