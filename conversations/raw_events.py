"""Storing raw events: what a webhook does, and all it does.

A verified request becomes one or more RawEvent rows in one INSERT (`ON CONFLICT DO
NOTHING` on the provider's idempotency key), committed, and the applier is woken
(conversations.applier). Nothing is normalized here, so a webhook costs little more than a
bare Django view, and a payload that later fails to normalize is still kept.
"""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, connection
from django.utils import timezone

from .conf import auditor_settings
from .models import RawEvent
from .sql import Statements, db_value


@dataclass(frozen=True)
class RawEventSpec:
    """One raw event to store, as an adapter extracted it from a verified request."""

    kind: str
    dedupe_key: str
    body: str
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""
    # Names the conversation the event belongs to as well as the request can tell (sorted
    # addresses, an external id): events with the same key are applied in arrival order.
    partition_key: str = ""


@dataclass(frozen=True)
class StoreResult:
    """The rows of one request, in the order of its specs; `duplicate[i]`: stored before."""

    raw_events: list[RawEvent]
    duplicate: list[bool]

    @property
    def all_duplicate(self) -> bool:
        return all(self.duplicate)


@dataclass(frozen=True)
class IngestResult:
    raw_event: RawEvent
    duplicate: bool


def raw_event_partition(key: str) -> int:
    """The applier partition of a partition key (stable across processes and restarts)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % auditor_settings.APPLIER_PARTITIONS


_COLUMNS = ("provider", "kind", "dedupe_key", "body", "content_type", "headers", "url",
            "received_at", "status", "error", "attempts", "partition")
_ROW = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"


def _insert_sql(rows: int) -> str:
    return (f"INSERT INTO {RawEvent._meta.db_table} ({', '.join(_COLUMNS)}) "
            f"VALUES {', '.join([_ROW] * rows)} "
            "ON CONFLICT (provider, dedupe_key) DO NOTHING RETURNING id, dedupe_key")


def raw_events_store(
    *, provider: str, specs: Sequence[RawEventSpec], received_at: datetime | None = None
) -> StoreResult:
    """Store the raw events of one request in one statement, as pending, and commit.

    Keys stored before (a provider's retry, a redelivered batch) store nothing and are
    reported as duplicates, with the row stored first. The caller wakes the applier.
    """
    received = received_at or timezone.now()
    received_db = db_value(RawEvent, "received_at", received)
    partitions = [raw_event_partition(spec.partition_key) for spec in specs]
    params: list[object] = []
    for spec, partition in zip(specs, partitions, strict=True):
        params += [provider, spec.kind, spec.dedupe_key, spec.body, spec.content_type,
                   db_value(RawEvent, "headers", spec.headers), spec.url, received_db,
                   RawEvent.Status.PENDING, "", 0, partition]
    # One statement: in autocommit it is its own transaction, committed (durable) before
    # it answers, with no BEGIN and COMMIT round trips; inside a caller's transaction it
    # joins that one.
    with Statements() as sql:
        inserted = {key: pk for pk, key in sql.all(_insert_sql(len(specs)), params)}
    missing = [s.dedupe_key for s in specs if s.dedupe_key not in inserted]
    # ON CONFLICT waited for a concurrent delivery to commit; its rows are visible now.
    earlier = {raw.dedupe_key: raw for raw in RawEvent.objects.filter(
        provider=provider, dedupe_key__in=missing)} if missing else {}
    rows: list[RawEvent] = []
    duplicate: list[bool] = []
    for spec, partition in zip(specs, partitions, strict=True):
        if spec.dedupe_key in inserted:
            raw = RawEvent(
                pk=inserted[spec.dedupe_key], provider=provider, kind=spec.kind,
                dedupe_key=spec.dedupe_key, body=spec.body, content_type=spec.content_type,
                headers=spec.headers, url=spec.url, received_at=received,
                status=RawEvent.Status.PENDING, attempts=0,
                partition=partition,
            )
            raw._state.adding, raw._state.db = False, connection.alias
            rows.append(raw)
            duplicate.append(False)
        elif spec.dedupe_key in earlier:
            rows.append(earlier[spec.dedupe_key])
            duplicate.append(True)
        else:
            raise IntegrityError(f"raw event {provider}/{spec.dedupe_key} conflicts but is gone")
    return StoreResult(raw_events=rows, duplicate=duplicate)
