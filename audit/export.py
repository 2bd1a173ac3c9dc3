"""CSV export: one row per conversation, with the inbox's filters and order (most recent
activity first), written as it is read so a million rows never sit in memory.

Rows are read in keyset batches (no OFFSET, no long-open cursor): two queries per batch
(the conversations with their per-conversation figures, then their active flags).
"""

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan

from conversations.flag_text import flag_kind_label, flag_sentence
from conversations.models import FLAG_SEVERITY_RANK, AIStep, Conversation, Flag, Outcome
from handoffs.models import Handoff

from .inbox_filters import InboxFilters, inbox_queryset
from .masking import mask_address, mask_text
from .qa_selectors import User
from .quality_figures import QUALITY_KIND_VALUES
from .selectors import SEVERITY_BY_RANK, conversations_masked_match

BATCH = 2000
HEADER = (
    "id", "channel", "customer", "started_at", "last_activity_at", "messages", "handoffs",
    "latest_handoff_state", "time_to_human_seconds", "open_flags", "worst_severity",
    "ai_cost", "csat", "replay_url", "open_flags_in_words",
    "quality_flags", "quality_flags_in_words",
)


def export_queryset(*, filters: InboxFilters, reader: User | None = None
                    ) -> QuerySet[Conversation]:
    """The inbox's conversations, each with the figures a row needs (one query a batch)."""
    own = {"conversation": OuterRef("pk")}
    latest = Handoff.objects.filter(**own).order_by("-number")
    cost = (AIStep.objects.filter(**own).order_by().values("conversation")
            .annotate(total=Sum("cost")).values("total"))
    handoffs = (Handoff.objects.filter(**own).order_by().values("conversation")
                .annotate(n=Count("id")).values("n"))
    csat = (Outcome.objects.filter(**own, csat__isnull=False)
            .order_by("-occurred_at", "-id").values("csat")[:1])
    return (
        inbox_queryset(filters=filters, reader=reader)
        .order_by("-last_activity_at", "-id")
        .annotate(
            handoff_count=Subquery(handoffs),
            latest_state=Subquery(latest.values("state")[:1]),
            # The first time a human answered, over the conversation's handoffs.
            time_to_human=Subquery(
                Handoff.objects.filter(**own, time_to_human__isnull=False)
                .order_by("number").values("time_to_human")[:1]),
            ai_cost=Subquery(cost),
            csat_value=Subquery(csat),
        )
        .values_list(
            "id", "channel", "customer_address", "started_at", "last_activity_at",
            "message_count", "handoff_count", "latest_state", "time_to_human",
            "open_flag_rank", "ai_cost", "csat_value",
        )
    )


def export_batches(*, filters: InboxFilters, batch: int = BATCH,
                   reader: User | None = None) -> Iterator[list[tuple[Any, ...]]]:
    """Rows in batches, walking the (last activity, id) keyset."""
    base = export_queryset(filters=filters, reader=reader)
    after: tuple[datetime, int] | None = None
    while True:
        qs = base
        if after:
            # A row comparison, which PostgreSQL answers from the index (an OR of the two
            # columns is a filter over every row before the cursor: batch 500 of a million
            # rows would scan a million; EXPLAIN in bench/README.md, bench-views).
            qs = qs.filter(TupleLessThan(Tuple(F("last_activity_at"), F("id")), after))
        rows = list(qs[:batch])
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        after = (rows[-1][4], rows[-1][0])


def _open_flag_sentences(ids: list[int]) -> dict[int, str]:
    """The active flags of each conversation in words (conversations.flag_text), most
    severe first, one sentence each."""
    sentences: dict[int, list[tuple[int, str]]] = {}
    for conversation_id, kind, severity, evidence in Flag.objects.filter(
        conversation_id__in=ids, status__in=Flag.ACTIVE_STATUSES
    ).order_by("raised_at", "id").values_list("conversation_id", "kind", "severity", "evidence"):
        sentences.setdefault(conversation_id, []).append(
            (-FLAG_SEVERITY_RANK.get(severity, 0),
             f"{flag_kind_label(kind)}: {flag_sentence(kind, evidence)}"))
    return {cid: " | ".join(text for _, text in sorted(items, key=lambda i: i[0]))
            for cid, items in sentences.items()}


def _quality_flags(ids: list[int]) -> tuple[dict[int, str], dict[int, str]]:
    """The answer-quality flags of each conversation, whatever their status (as the
    dashboards' quality rates count them): 'ai_loop:1; ungrounded_answer:2', and in words
    ('AI repeating itself: <sentence> (resolved)'), in the order they were raised."""
    counts: dict[int, Counter[str]] = {}
    words: dict[int, list[str]] = {}
    for conversation_id, kind, status, evidence in Flag.objects.filter(
        conversation_id__in=ids, kind__in=QUALITY_KIND_VALUES
    ).order_by("raised_at", "id").values_list("conversation_id", "kind", "status", "evidence"):
        counts.setdefault(conversation_id, Counter())[kind] += 1
        state = "" if status == Flag.Status.OPEN else f" ({Flag.Status(status).label.lower()})"
        words.setdefault(conversation_id, []).append(
            f"{flag_kind_label(kind)}: {flag_sentence(kind, evidence)}{state}")
    return ({cid: "; ".join(f"{k}:{n}" for k, n in sorted(c.items()))
             for cid, c in counts.items()},
            {cid: " | ".join(texts) for cid, texts in words.items()})


def _open_flags(ids: list[int]) -> dict[int, str]:
    """'handoff_dropped:1; handoff_stalled:2' per conversation (open or acknowledged)."""
    counts: dict[int, Counter[str]] = {}
    for conversation_id, kind in Flag.objects.filter(
        conversation_id__in=ids, status__in=Flag.ACTIVE_STATUSES
    ).values_list("conversation_id", "kind"):
        counts.setdefault(conversation_id, Counter())[kind] += 1
    return {cid: "; ".join(f"{k}:{n}" for k, n in sorted(c.items())) for cid, c in counts.items()}


class _Echo:
    """csv.writer's file: hands each written line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet runs a cell beginning with one of these as a formula (DDE, HYPERLINK).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# A signed number or phone number (masked or not) is data, not a formula: it can call no
# function, and a quote would spoil every phone number in E.164.
_NUMBER = re.compile(r"[+-]?[\d•][\d• ().-]*")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: OWASP's CSV-injection advice, a single quote
    before a leading = + - @ tab or CR. Numbers are written as they are."""
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not _NUMBER.fullmatch(value)):
        return "'" + value
    return value


class CsvLines:
    """csv.writer for a streamed export: `row(values)` is the line to yield, every text cell
    neutralised (csv_cell). The exports' one way to write a row."""

    def __init__(self) -> None:
        self._writer = csv.writer(_Echo())

    def row(self, values: Iterable[Any]) -> str:
        return self._writer.writerow([csv_cell(v) for v in values])


def export_csv_lines(
    *, filters: InboxFilters, can_pii: bool, replay_url: Callable[[int], str],
    batch: int = BATCH, reader: User | None = None,
) -> Iterator[str]:
    """The CSV, line by line: a header, then one line per conversation."""
    writer = CsvLines()
    yield writer.row(HEADER)
    for rows in export_batches(filters=filters, batch=batch, reader=reader):
        if filters.q and not can_pii:  # a search matches only what the reader may see
            candidates = list(Conversation.objects.filter(pk__in=[r[0] for r in rows])
                              .only("pk", "customer_address", "subject"))
            seen = {c.pk for c in conversations_masked_match(conversations=candidates,
                                                             q=filters.q)}
            rows = [r for r in rows if r[0] in seen]
        flags = _open_flags([r[0] for r in rows])
        words = _open_flag_sentences([r[0] for r in rows])
        quality, quality_words = _quality_flags([r[0] for r in rows])
        for (pk, channel, customer, started, last, messages, handoffs, state, tth, rank,
             cost, csat) in rows:
            yield writer.row((
                pk, channel, customer if can_pii else mask_address(customer, channel),
                started.isoformat(), last.isoformat(), messages, handoffs or 0, state or "",
                "" if tth is None else round(tth, 1), flags.get(pk, ""),
                SEVERITY_BY_RANK.get(rank, ""),
                "" if cost is None else f"{Decimal(cost):.6f}", "" if csat is None else csat,
                replay_url(pk),
                words.get(pk, "") if can_pii else mask_text(words.get(pk, "")),
                quality.get(pk, ""),
                quality_words.get(pk, "") if can_pii else mask_text(quality_words.get(pk, "")),
            ))
