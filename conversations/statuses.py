"""Status reports committed concurrently with their message: joined after commit.

Inside a batch, ingest decides the joins (ingest_decide). A report and its message
committed by two concurrent transactions see neither the other: each batch joins once more
after it commits (`message_statuses_join_many`), so the last of the two sees both rows;
`message_statuses_reconcile` (beat) catches a process killed in between. Same rule as
inside a batch: waiting reports by rank, time and arrival, only forward.
"""

from collections.abc import Sequence

from django.db import transaction

from .ingest_decide import status_fold
from .models import STATUS_RANK, Message, MessageStatusEvent
from .sql import Statements

_WAITING_JOIN = f"""
    SELECT DISTINCT s.provider, s.provider_message_id FROM {MessageStatusEvent._meta.db_table} s
    JOIN unnest(%s::text[], %s::text[]) AS k(provider, provider_message_id)
      ON s.provider = k.provider AND s.provider_message_id = k.provider_message_id
    JOIN {Message._meta.db_table} m
      ON m.provider = s.provider AND m.provider_message_id = s.provider_message_id
    WHERE s.message_id IS NULL"""


def message_statuses_join(*, provider: str, provider_message_id: str) -> int:
    """Attach waiting status reports to their message, if it is recorded, and move it
    forward; returns how many were joined."""
    message = (Message.objects.select_for_update()
               .filter(provider=provider, provider_message_id=provider_message_id)
               .only("pk", "conversation_id", "status", "status_rank", "status_at",
                     "error_code").first())
    if message is None:
        return 0
    waiting = list(MessageStatusEvent.objects.filter(
        provider=provider, provider_message_id=provider_message_id, message__isnull=True,
    ).order_by("pk"))  # arrival order breaks ties of rank and time (sorted() is stable)
    if not waiting:
        return 0
    MessageStatusEvent.objects.filter(pk__in=[s.pk for s in waiting]).update(
        message=message.pk, conversation=message.conversation_id)
    ordered = sorted(waiting, key=lambda s: (STATUS_RANK.get(s.status, 0), s.occurred_at))
    before = (message.status, message.status_rank, message.status_at, message.error_code)
    status, rank, at, code = status_fold(
        before, [(s.status, s.occurred_at, s.error_code) for s in ordered])
    if rank > message.status_rank:
        Message.objects.filter(pk=message.pk, status_rank__lt=rank).update(
            status=status, status_rank=rank, status_at=at, error_code=code)
    return len(waiting)


def message_statuses_join_many(*, pairs: Sequence[tuple[str, str]]) -> int:
    """message_statuses_join for many (provider, provider message id) pairs, after a
    batch commits: one statement finds the few that have a waiting report and a recorded
    message, and only those are joined."""
    if not pairs:
        return 0
    providers, pmids = (list(c) for c in zip(*sorted(pairs), strict=True))
    with Statements() as sql:
        if sql.postgres:
            joinable = sql.all(_WAITING_JOIN, [providers, pmids])
        else:
            joinable = sorted(set(pairs))
    joined = 0
    for provider, pmid in joinable:
        with transaction.atomic():
            joined += message_statuses_join(provider=provider, provider_message_id=pmid)
    return joined


def message_statuses_reconcile() -> int:
    """Join every waiting report whose message now exists (catch-up for a crash between a
    commit and its after-commit join). Returns how many reports were joined."""
    joined = 0
    waiting = (MessageStatusEvent.objects.filter(message__isnull=True)
               .values_list("provider", "provider_message_id").distinct())
    for provider, provider_message_id in waiting.iterator():
        with transaction.atomic():
            joined += message_statuses_join(
                provider=provider, provider_message_id=provider_message_id)
    return joined
