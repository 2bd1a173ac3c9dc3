"""Writes. Every row here is derived from a RawEvent, so re-applying one changes nothing.

The ingest path, for one webhook request, in one transaction:
    raw_event_ingest -> RawEvent row (dedupe) -> raw_event_process -> normalizer(raw)
    -> event_apply for each normalized event -> message_record / message_status_record.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from .events import MessageEvent, NormalizationError, NormalizedEvent, StatusEvent
from .models import (
    STATUS_RANK,
    AuthorKind,
    Conversation,
    DeliveryStatus,
    Direction,
    Flag,
    Message,
    MessageStatusEvent,
    Participant,
    RawEvent,
)
from .signals import message_recorded

logger = logging.getLogger(__name__)

Normalizer = Callable[[RawEvent], list[NormalizedEvent]]
_NORMALIZERS: dict[tuple[str, str], Normalizer] = {}


def normalizer_register(*, provider: str, kind: str, normalizer: Normalizer) -> None:
    """Adapters register how to turn their raw events into normalized events (in ready()).

    The registry is what lets `reprocess_events` rebuild history without this app
    importing the adapters.
    """
    _NORMALIZERS[(provider, kind)] = normalizer


def normalizer_get(*, provider: str, kind: str) -> Normalizer:
    try:
        return _NORMALIZERS[(provider, kind)]
    except KeyError:
        raise NormalizationError(f"no normalizer registered for {provider}/{kind}") from None


# --- raw events -------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    raw_event: RawEvent
    duplicate: bool


def raw_event_ingest(
    *,
    provider: str,
    kind: str,
    dedupe_key: str,
    body: str,
    content_type: str = "",
    headers: dict[str, str] | None = None,
    url: str = "",
    received_at: datetime | None = None,
) -> IngestResult:
    """Store a verified request and apply it, in one transaction.

    A second delivery with the same dedupe key changes nothing and reports `duplicate`.
    A payload that cannot be normalized is kept as a failed raw event (see raw_event_process).
    """
    try:
        with transaction.atomic():
            raw = RawEvent.objects.create(
                provider=provider,
                kind=kind,
                dedupe_key=dedupe_key,
                body=body,
                content_type=content_type,
                headers=headers or {},
                url=url,
                received_at=received_at or timezone.now(),
            )
            raw_event_process(raw_event=raw)
    except IntegrityError:
        existing = RawEvent.objects.filter(provider=provider, dedupe_key=dedupe_key).first()
        if existing is None:
            raise
        return IngestResult(raw_event=existing, duplicate=True)
    return IngestResult(raw_event=raw, duplicate=False)


def raw_event_process(*, raw_event: RawEvent) -> RawEvent:
    """Normalize and apply one raw event; on any failure keep it, marked failed with why."""
    raw_event.attempts += 1
    try:
        with transaction.atomic():
            normalizer = normalizer_get(provider=raw_event.provider, kind=raw_event.kind)
            events_apply(events=normalizer(raw_event), raw_event=raw_event)
    except Exception as exc:  # noqa: BLE001 - whatever broke, the raw event must survive
        raw_event.status = RawEvent.Status.FAILED
        raw_event.error = f"{type(exc).__name__}: {exc}"[:4000]
        log = logger.info if isinstance(exc, NormalizationError) else logger.exception
        log("raw event %s/%s failed: %s", raw_event.provider, raw_event.dedupe_key, exc)
    else:
        raw_event.status = RawEvent.Status.PROCESSED
        raw_event.error = ""
    raw_event.processed_at = timezone.now()
    raw_event.save(update_fields=["attempts", "status", "error", "processed_at"])
    return raw_event


def raw_events_reprocess(
    *, raw_events: Iterable[RawEvent], on_progress: Callable[[RawEvent], Any] | None = None
) -> dict[str, int]:
    """Apply stored raw events again. Idempotent: rows that exist are found, not duplicated."""
    counts = {RawEvent.Status.PROCESSED: 0, RawEvent.Status.FAILED: 0}
    for raw in raw_events:
        with transaction.atomic():
            raw_event_process(raw_event=raw)
        counts[raw.status] += 1
        if on_progress:
            on_progress(raw)
    return {str(k): v for k, v in counts.items()}


# --- conversations and messages ---------------------------------------------------------


def events_apply(*, events: Iterable[NormalizedEvent], raw_event: RawEvent | None = None) -> None:
    for event in events:
        if isinstance(event, MessageEvent):
            message_record(event=event, raw_event=raw_event)
        elif isinstance(event, StatusEvent):
            message_status_record(event=event, raw_event=raw_event)
        else:  # pragma: no cover - a new event type without a handler is a programming error
            raise TypeError(f"unhandled event {type(event).__name__}")


def conversation_get_or_open(
    *, channel: str, business_address: str, customer_address: str, at: datetime
) -> Conversation:
    """The customer's open thread on this channel and business address, opened if none.

    Concurrent first messages race on the `conversation_one_open_thread` unique index;
    get_or_create retries the read when it loses, so both land in one conversation.
    """
    conversation, _ = Conversation.objects.get_or_create(
        channel=channel,
        business_address=business_address,
        customer_address=customer_address,
        status=Conversation.Status.OPEN,
        defaults={"started_at": at, "last_activity_at": at},
    )
    return conversation


def participant_get_or_create(
    *,
    conversation: Conversation,
    kind: str,
    external_id: str,
    display_name: str = "",
    metadata: dict[str, Any] | None = None,
) -> Participant:
    participant, created = Participant.objects.get_or_create(
        conversation=conversation,
        kind=kind,
        external_id=external_id,
        defaults={"display_name": display_name, "metadata": metadata or {}},
    )
    if not created and display_name and participant.display_name != display_name:
        # WhatsApp profile names change; keep the latest one.
        Participant.objects.filter(pk=participant.pk).update(display_name=display_name)
        participant.display_name = display_name
    return participant


def message_record(*, event: MessageEvent, raw_event: RawEvent | None = None) -> Message:
    """Record one message; a message already known by its provider id is returned as is."""
    if event.provider_message_id:
        existing = Message.objects.filter(
            provider=event.provider, provider_message_id=event.provider_message_id
        ).first()
        if existing is not None:
            return existing

    conversation = conversation_get_or_open(
        channel=event.channel,
        business_address=event.business_address,
        customer_address=event.customer_address,
        at=event.occurred_at,
    )
    author_id = event.author_id or (
        event.customer_address if event.author_kind == AuthorKind.CUSTOMER else event.author_kind
    )
    participant = participant_get_or_create(
        conversation=conversation,
        kind=event.author_kind,
        external_id=author_id,
        display_name=event.author_name,
        metadata=event.author_metadata,
    )
    status = event.status or (
        DeliveryStatus.RECEIVED if event.direction == Direction.INBOUND else DeliveryStatus.UNKNOWN
    )
    fields = {
        "conversation": conversation,
        "participant": participant,
        "direction": event.direction,
        "author_kind": event.author_kind,
        "body": event.body,
        "provider": event.provider,
        "provider_message_id": event.provider_message_id,
        "sent_at": event.occurred_at,
        "status": status,
        "status_rank": STATUS_RANK.get(status, 0),
        "status_at": event.occurred_at,
        "num_segments": event.num_segments,
        "media": event.media,
        "metadata": event.metadata,
        "raw_event": raw_event,
    }
    try:
        with transaction.atomic():
            message = Message.objects.create(**fields)
    except IntegrityError:
        # The same provider message recorded concurrently through another path.
        return Message.objects.get(
            provider=event.provider, provider_message_id=event.provider_message_id
        )


    conversation_touch(
        conversation_id=conversation.pk,
        at=event.occurred_at,
        from_customer=event.author_kind == AuthorKind.CUSTOMER,
    )
    if event.provider_message_id and event.direction == Direction.OUTBOUND:
        # Status reports may have arrived first. Join those committed already, and once more
        # after commit for one committed concurrently with this message (see the docstring
        # of message_statuses_join).
        message_statuses_join(
            provider=event.provider, provider_message_id=event.provider_message_id
        )
        _join_after_commit(event.provider, event.provider_message_id)
    transaction.on_commit(
        lambda: message_recorded.send(sender=Message, message_id=message.pk), robust=True
    )
    return message


def conversation_touch(*, conversation_id: int, at: datetime, from_customer: bool) -> None:
    """Count a message on its conversation without losing concurrent updates.

    One UPDATE with database-side arithmetic: two webhooks for the same conversation each
    add one, and messages that arrive out of order never move the activity clock back.
    """
    changes: dict[str, Any] = {
        "message_count": F("message_count") + 1,
        "last_activity_at": Greatest("last_activity_at", at),
        "started_at": Least("started_at", at),
    }
    if from_customer:
        changes["last_customer_message_at"] = Greatest(
            Coalesce("last_customer_message_at", at), at
        )
    Conversation.objects.filter(pk=conversation_id).update(**changes)


def message_status_record(
    *, event: StatusEvent, raw_event: RawEvent | None = None
) -> MessageStatusEvent:
    """Keep a delivery status report in the history and move its message forward.

    Reports about a message not recorded yet wait (message unset) until it is.
    """
    message = (
        Message.objects.filter(
            provider=event.provider, provider_message_id=event.provider_message_id
        )
        .only("pk", "conversation_id")
        .first()
    )
    status_event, created = MessageStatusEvent.objects.get_or_create(
        provider=event.provider,
        provider_message_id=event.provider_message_id,
        provider_status=event.provider_status,
        defaults={
            "message": message,
            "conversation_id": message.conversation_id if message else None,
            "status": event.status,
            "error_code": event.error_code,
            "error_message": event.error_message,
            "occurred_at": event.occurred_at,
            "raw_event": raw_event,
            "metadata": event.metadata,
        },
    )
    if message is not None:
        message_status_advance(
            message_id=message.pk,
            status=event.status,
            at=event.occurred_at,
            error_code=event.error_code,
        )
    else:
        _join_after_commit(event.provider, event.provider_message_id)
    return status_event


def message_status_advance(
    *, message_id: int, status: str, at: datetime, error_code: str = ""
) -> bool:
    """Move a message's current status forward; a report that is not ahead changes nothing.

    The rank test is in the UPDATE's WHERE clause, so two concurrent reports cannot both
    win, and a late "delivered" never overwrites "read".
    """
    rank = STATUS_RANK.get(status, 0)
    changes: dict[str, Any] = {"status": status, "status_rank": rank, "status_at": at}
    if error_code:
        changes["error_code"] = error_code
    return bool(Message.objects.filter(pk=message_id, status_rank__lt=rank).update(**changes))


def message_statuses_join(*, provider: str, provider_message_id: str) -> int:
    """Attach waiting status reports to their message, if it is recorded; returns how many.

    Called inside the transaction that records a message or a report, and again after it
    commits: of two transactions committing concurrently (a message and its early report),
    the one whose after-commit call runs last sees both rows, so none is left waiting.
    """
    message = (
        Message.objects.filter(provider=provider, provider_message_id=provider_message_id)
        .only("pk", "conversation_id")
        .first()
    )
    if message is None:
        return 0
    waiting = list(
        MessageStatusEvent.objects.filter(
            provider=provider, provider_message_id=provider_message_id, message__isnull=True
        )
    )
    if not waiting:
        return 0
    MessageStatusEvent.objects.filter(pk__in=[s.pk for s in waiting]).update(
        message=message.pk, conversation=message.conversation_id
    )
    for report in sorted(waiting, key=lambda s: (STATUS_RANK.get(s.status, 0), s.occurred_at)):
        message_status_advance(
            message_id=message.pk,
            status=report.status,
            at=report.occurred_at,
            error_code=report.error_code,
        )
    return len(waiting)


def _join_after_commit(provider: str, provider_message_id: str) -> None:
    def join() -> None:
        with transaction.atomic():
            message_statuses_join(provider=provider, provider_message_id=provider_message_id)

    transaction.on_commit(join, robust=True)


def message_statuses_reconcile() -> int:
    """Join every waiting report whose message now exists (catch-up for a crash between a
    commit and its after-commit join). Returns how many reports were joined."""
    joined = 0
    waiting = (
        MessageStatusEvent.objects.filter(message__isnull=True)
        .values_list("provider", "provider_message_id")
        .distinct()
    )
    for provider, provider_message_id in waiting.iterator():
        with transaction.atomic():
            joined += message_statuses_join(
                provider=provider, provider_message_id=provider_message_id
            )
    return joined


# --- flags ------------------------------------------------------------------------------


def flag_raise(
    *,
    conversation: Conversation,
    kind: str,
    severity: str,
    subject_type: str,
    subject_id: int,
    evidence: dict[str, Any],
    at: datetime | None = None,
) -> tuple[Flag, bool]:
    """Raise a finding; if the same finding is already open (or acknowledged), refresh its
    evidence and severity instead of opening a second flag. Returns (flag, created)."""
    at = at or timezone.now()
    try:
        with transaction.atomic():
            flag = Flag.objects.create(
                conversation=conversation,
                kind=kind,
                severity=severity,
                subject_type=subject_type,
                subject_id=subject_id,
                evidence=evidence,
                raised_at=at,
            )
            return flag, True
    except IntegrityError:
        flag = Flag.objects.select_for_update().get(
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            status__in=Flag.ACTIVE_STATUSES,
        )
        flag.evidence = evidence
        flag.severity = severity
        flag.save(update_fields=["evidence", "severity", "updated_at"])
        return flag, False


def flag_set_status(*, flag: Flag, status: str, by: str, note: str = "") -> Flag:
    flag.status = status
    flag.status_changed_at = timezone.now()
    flag.status_changed_by = by
    if note:
        flag.note = note
    flag.save(update_fields=["status", "status_changed_at", "status_changed_by", "note"])
    return flag
