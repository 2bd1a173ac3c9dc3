"""The floor task of `make bench-scoring`: what a scoring task costs without the scoring.

Loaded into the bench worker only (`celery worker --include bench.scoring_floor`). It reads
the same batch of messages the same way scoring.services.messages_score does and writes
nothing, so its drain rate is the most a scoring worker could reach on this machine
(broker round trips, task overhead, the read).
"""

from celery import shared_task

from conversations.models import Message


@shared_task(name="bench.scoring_floor.load_batch", acks_late=True)
def load_batch(message_ids: list[int]) -> int:
    return sum(len(m.body) > 0 for m in Message.objects.filter(pk__in=message_ids)
               .select_related("conversation"))
