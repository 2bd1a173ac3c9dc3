"""Reads of the scoring app: what still needs scoring, scores of a conversation, and the
per-channel figures the dashboards show."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from conversations.models import AuthorKind, Conversation, Direction, Message

from .language import language_name
from .models import BrandVoice, ConversationBrand, Score, ScoreDaily
from .scorer_set import BrandTone
from .scorers import author_of
from .stats import consistency_index, distribution_compare


def brand_conversations(*, brand: BrandVoice) -> QuerySet[Conversation]:
    """Conversations the brand owns, by the rules of services.conversation_brands_resolve:
    an explicit assignment, else the business-address rule, else the default brand."""
    assigned_elsewhere = ConversationBrand.objects.exclude(brand=brand).values("conversation")
    qs = Conversation.objects.exclude(pk__in=assigned_elsewhere)
    own = Q(brand_assignment__brand=brand)
    if brand.business_addresses:
        own |= Q(business_address__in=brand.business_addresses)
    if not brand.is_default:
        return qs.filter(own)
    claimed = [a for b in BrandVoice.objects.exclude(pk=brand.pk)
               for a in (b.business_addresses or ())]
    return qs.filter(own | ~Q(business_address__in=claimed))


def message_ids_to_score(
    *, tone: BrandTone, since: datetime | None = None, brand: BrandVoice | None = None,
    channel: str | None = None, current_only: bool = True, limit: int | None = None,
) -> list[int]:
    """Outbound AI/human and inbound customer messages not purged by retention, oldest
    first; with current_only,
    only those lacking a score from the current scorer versions (brand_tone's version names
    every scorer's; every message gets a `language` row whose author names the inbound
    scorers' versions, so it marks inbound ones done even where their language left them
    unscored)."""
    from .services import LANGUAGE_AUTHOR
    outbound = Q(direction=Direction.OUTBOUND, author_kind__in=[AuthorKind.AI, AuthorKind.HUMAN])
    inbound = Q(direction=Direction.INBOUND, author_kind=AuthorKind.CUSTOMER)
    if current_only:
        def done(name: str, author: str) -> Exists:
            return Exists(Score.objects.filter(
                subject_type=Score.SubjectType.MESSAGE, subject_id=OuterRef("pk"),
                name=name, source=Score.Source.AUTO, author=author,
            ))
        outbound &= ~done(tone.name, author_of(tone))
        inbound &= ~done("language", LANGUAGE_AUTHOR)
    # Retention emptied purged messages' text: scoring it again would overwrite real scores.
    qs = Message.objects.filter(outbound | inbound, purged_at__isnull=True)
    if since is not None:
        qs = qs.filter(sent_at__gte=since)
    if channel:
        qs = qs.filter(conversation__channel=channel)
    if brand is not None:
        qs = qs.filter(conversation__in=brand_conversations(brand=brand))
    ids = qs.order_by("pk").values_list("pk", flat=True)
    return list(ids[:limit] if limit else ids)


def message_scores(*, message: Message) -> dict[str, Score]:
    """The automated scores of one message by dimension (for the replay view)."""
    return {
        s.name: s for s in Score.objects.filter(
            subject_type=Score.SubjectType.MESSAGE, subject_id=message.pk,
            source=Score.Source.AUTO,
        ).order_by("created_at")
    }


def channel_summary(
    *, brand: BrandVoice, start: date, end: date, name: str = "brand_tone",
    author_kind: str | None = None,
) -> dict[str, Any]:
    """Per channel (and author kind): messages, mean and pooled SD of one dimension over
    the days [start, end] from the daily aggregates, and the consistency index across
    channels (stats.consistency_index over the per-channel means). By default the brand's
    own replies (AI and human); customers' warmth only when asked for by author_kind."""
    rows = ScoreDaily.objects.filter(brand=brand, name=name, day__gte=start, day__lte=end)
    if author_kind:
        rows = rows.filter(author_kind=author_kind)
    else:
        rows = rows.filter(author_kind__in=[AuthorKind.AI, AuthorKind.HUMAN])
    acc: dict[tuple[str, str], list[tuple[int, float, float]]] = defaultdict(list)
    for r in rows:
        acc[(r.channel, r.author_kind)].append((r.count, r.mean, r.stddev))
    channels: dict[str, dict[str, Any]] = {}
    by_channel: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for (channel, kind), parts in sorted(acc.items()):
        channels.setdefault(channel, {})[kind] = _pool(parts)
        by_channel[channel] += parts
    overall = {channel: _pool(parts) for channel, parts in by_channel.items()}
    return {
        "dimension": name,
        "start": str(start),
        "end": str(end),
        "channels": channels,
        "per_channel": overall,
        "consistency_index": consistency_index([v["mean"] for v in overall.values()]),
    }


def _pool(parts: list[tuple[int, float, float]]) -> dict[str, Any]:
    """Pooled count, mean and population SD of several (count, mean, SD) groups."""
    n = sum(c for c, _, _ in parts)
    mean = sum(c * m for c, m, _ in parts) / n
    var = sum(c * (sd ** 2 + (m - mean) ** 2) for c, m, sd in parts) / n
    return {"count": n, "mean": round(mean, 4), "stddev": round(var ** 0.5, 4)}


def daily_series(*, brand: BrandVoice, name: str = "brand_tone", start: date,
                 end: date) -> list[ScoreDaily]:
    """Daily aggregates for a dashboard chart, ordered by day."""
    return list(ScoreDaily.objects.filter(brand=brand, name=name, day__gte=start,
                                          day__lte=end).order_by("day", "channel",
                                                                 "author_kind"))


def channel_distributions(
    *, brand: BrandVoice, start: datetime, end: datetime, name: str = "brand_tone",
    author_kinds: tuple[str, ...] = (AuthorKind.AI, AuthorKind.HUMAN),
    max_per_channel: int = 20000,
) -> dict[str, Any]:
    """Consistency across channels as a comparison of distributions, not of means: for
    each pair of channels, the Wasserstein distance (the average amount a score must move
    to turn one channel's distribution into the other's; 0 = identical, on the 0-1 scale)
    and the two-sample Kolmogorov-Smirnov statistic with its p-value, with both sample
    sizes. Scores of messages sent in [start, end); of each message and dimension the most
    recent automated row; at most max_per_channel messages a channel (the newest)."""
    values: dict[str, list[float]] = {}
    rows = (Score.objects.filter(brand=brand, name=name, source=Score.Source.AUTO,
                                 subject_type=Score.SubjectType.MESSAGE,
                                 author_kind__in=list(author_kinds),
                                 occurred_at__gte=start, occurred_at__lt=end)
            .order_by("channel", "message_id", "-created_at", "-pk")
            .values_list("channel", "message_id", "value"))
    seen: set[int] = set()
    for channel, message_id, value in rows.iterator(chunk_size=5000):
        if message_id in seen:
            continue
        seen.add(message_id)
        bucket = values.setdefault(channel, [])
        if len(bucket) < max_per_channel:
            bucket.append(value)
    return {"dimension": name, "start": start.isoformat(), "end": end.isoformat(),
            **distribution_compare(values)}


def language_summary(*, brand: BrandVoice, start: datetime, end: datetime,
                     name: str = "brand_tone", also: Sequence[str] = ()
                     ) -> list[dict[str, Any]]:
    """Per detected language: messages, how many of them had dimensions left out because
    of their language ("not scored: language"), how many have the dimension `name` and its
    mean, and the mean of each dimension in `also` (None where none was scored); most
    messages first."""
    rows = (Score.objects.filter(brand=brand, name="language", source=Score.Source.AUTO,
                                 author=_language_author(), occurred_at__gte=start,
                                 occurred_at__lt=end)
            .values_list("message_id", "explanations__language", "explanations__not_scored"))
    languages: dict[int, tuple[str, bool]] = {
        mid: (code or "und", bool(skipped)) for mid, code, skipped in rows}
    if not languages:
        return []
    scored: dict[str, dict[int, float]] = defaultdict(dict)
    for dimension, message_id, value in (
            Score.objects.filter(brand=brand, name__in=[name, *also],
                                 source=Score.Source.AUTO, message_id__in=list(languages),
                                 occurred_at__gte=start, occurred_at__lt=end)
            .order_by("message_id", "created_at").values_list("name", "message_id", "value")):
        scored[dimension][message_id] = value
    acc: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0, 0.0])
    extra: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for message_id, (code, skipped) in languages.items():
        row = acc[code]
        row[0] += 1
        row[1] += skipped
        if message_id in scored[name]:
            row[2] += 1
            row[3] += scored[name][message_id]
        for dimension in also:
            if message_id in scored[dimension]:
                extra[code][dimension].append(scored[dimension][message_id])
    out = [{"language": code, "name": language_name(code), "messages": n, "not_scored": k,
            "scored": m, "mean": round(total / m, 4) if m else None,
            "also": {d: round(sum(v) / len(v), 4) if (v := extra[code][d]) else None
                     for d in also}}
           for code, (n, k, m, total) in acc.items()]
    return sorted(out, key=lambda r: (-r["messages"], r["language"]))


def _language_author() -> str:
    from .services import LANGUAGE_AUTHOR

    return LANGUAGE_AUTHOR
