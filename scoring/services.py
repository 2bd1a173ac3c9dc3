"""Writes of the scoring app: brand voices, scores, flags from checks, daily aggregates and
drift. Keyword-only functions named <entity>_<action>; tasks and commands call these."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery

from conversations.conf import auditor_settings
from conversations.models import AIStep, AuthorKind, Conversation, Direction, Flag, Message
from conversations.services import dashboard_days_mark, flag_raise

from .aggregates import (  # noqa: F401  (their home; services is where callers look)
    scores_daily_refresh,
    scores_daily_roll,
    tone_drift_detect,
)
from .calibration import BrandFit, calibrations_for
from .checks import CheckInput, Finding, normalize_address, pii_leak_check, reasoning_leak_check
from .language import language_detect, language_name
from .models import BrandVoice, ConversationBrand, Score
from .scorer_set import DEFAULT_SCORERS, BrandTone
from .scorers import Result, Scorer, ScoringInput, author_of
from .tone import Frustration, Warmth, score_for_languages

logger = logging.getLogger(__name__)

# Fields of BrandVoice that HANDOFF_AUDITOR["BRAND_VOICE"] may seed.
_BRAND_FIELDS = {
    f.name for f in BrandVoice._meta.get_fields()
    if getattr(f, "concrete", False) and f.name not in {"id", "created_at", "updated_at"}
}


# --- brands ------------------------------------------------------------------------------


def brand_voice_default() -> BrandVoice:
    """The default brand; created on first use from HANDOFF_AUDITOR["BRAND_VOICE"]."""
    brand = BrandVoice.objects.filter(is_default=True).first()
    if brand is not None:
        return brand
    seed = dict(auditor_settings.BRAND_VOICE or {})
    unknown = set(seed) - _BRAND_FIELDS
    if unknown:
        raise ValueError(f"Unknown BRAND_VOICE fields: {sorted(unknown)}")
    seed.setdefault("name", "default")
    seed["is_default"] = True
    with transaction.atomic():
        brand, _ = BrandVoice.objects.get_or_create(name=seed["name"], defaults=seed)
        if not brand.is_default:
            brand.is_default = True
            brand.save(update_fields=["is_default", "updated_at"])
    return brand


def conversation_brand_assign(*, conversation: Conversation, brand: BrandVoice) -> None:
    ConversationBrand.objects.update_or_create(conversation=conversation,
                                               defaults={"brand": brand})


def conversation_brands_resolve(
    *, conversations: Iterable[Conversation]
) -> dict[int, BrandVoice]:
    """Brand of each conversation: its ConversationBrand row, else the brand whose
    business_addresses list its business address, else the default brand."""
    conversations = list(conversations)
    ids = [c.pk for c in conversations]
    assigned_ids = dict(
        ConversationBrand.objects.filter(conversation_id__in=ids)
        .values_list("conversation_id", "brand_id")
    )
    # Each brand loaded once, however many conversations it owns.
    brands = BrandVoice.objects.in_bulk(set(assigned_ids.values()))
    assigned = {cid: brands[bid] for cid, bid in assigned_ids.items()}
    by_address: dict[str, BrandVoice] = {}
    for brand in BrandVoice.objects.exclude(business_addresses=[]):
        for address in brand.business_addresses or ():
            by_address.setdefault(address.lower(), brand)
    default: BrandVoice | None = None
    result: dict[int, BrandVoice] = {}
    for c in conversations:
        brand = assigned.get(c.pk) or by_address.get(c.business_address.lower())
        if brand is None:
            default = default or brand_voice_default()
            brand = default
        result[c.pk] = brand
    return result


# --- scoring -----------------------------------------------------------------------------


@cache
def _scorer_set(embeddings: bool, weights: tuple[tuple[str, float], ...]) -> BrandTone:
    scorers: list[Scorer] = list(DEFAULT_SCORERS)
    if embeddings:
        from .embeddings import ExemplarSimilarity, WarmthEmbedding

        # The embeddings variant of warmth replaces the default one.
        scorers = [WarmthEmbedding() if s.name == "warmth" else s for s in scorers]
        scorers.append(ExemplarSimilarity())
    return BrandTone(scorers, dict(weights))


def scorer_set_current() -> BrandTone:
    """The scorers in force (the embeddings scorer only when enabled in settings)."""
    return _scorer_set(bool(auditor_settings.SCORING_EMBEDDINGS),
                       tuple(sorted(auditor_settings.SCORING_WEIGHTS.items())))


def scorers_warm() -> None:
    """Load every shipped model, word list and the language detector now, score one message
    in each language the scorers know (compiling their patterns), then move everything
    loaded into the garbage collector's permanent generation (gc.freeze). The word lists
    are ~100,000 long-lived objects that every full collection would otherwise walk: with
    them frozen the learned scorers run about a third faster (bench/scoring.py). Called once
    per worker (tasks.py, on worker_init, before prefork children fork) and by the bench."""
    import gc

    from .models import BrandVoice

    brand = BrandVoice(name="warm-up")
    samples = {"en": "Thanks for waiting!", "es": "Gracias por esperar.",
               "pt": "Obrigado por esperar.", "fr": "Merci d'avoir attendu.",
               "de": "Danke für die Geduld."}
    items = [ScoringInput(text, "web", "ai", brand, code) for code, text in samples.items()]
    language_detect(samples["en"])
    for scorer in (*scorer_set_current().scorers, *INBOUND_SCORERS):
        score_for_languages(scorer, items)
    gc.collect()
    gc.freeze()


# What customers' messages get: context for the replies, no brand judgment.
INBOUND_SCORERS: tuple[Scorer, ...] = (Warmth(), Frustration())
BRAND_FIT = BrandFit()
# Every scored message gets a `language` row; its author names the detector and the
# inbound scorers, so it also marks an inbound message as scored by the current versions.
LANGUAGE_VERSION = 1
LANGUAGE_AUTHOR = "language@" + hashlib.sha1("+".join(
    [f"detector{LANGUAGE_VERSION}", *(author_of(s) for s in INBOUND_SCORERS)]
).encode()).hexdigest()[:10]


def _language_result(language: str, confidence: float, not_scored: Sequence[str]) -> Result:
    return Result("language", confidence, 1.0, {
        "language": language, "name": language_name(language),
        "confidence": round(confidence, 4), "not_scored": sorted(not_scored),
    })


def _text(message: Message) -> str:
    return message.body_new or message.body or ""


# Columns of a Score row as messages_score builds them (created_at is added on insert).
_SCORE_COLUMNS = ("subject_type", "subject_id", "conversation_id", "message_id", "brand_id",
                  "name", "value", "source", "author", "explanations", "channel",
                  "author_kind", "occurred_at")
_SCORE_UPDATED = ("value", "explanations", "brand_id", "channel", "author_kind", "occurred_at")


def _score_row(message: Message, brand: BrandVoice, result: Result, author: str) -> tuple:
    return (Score.SubjectType.MESSAGE.value, message.pk, message.conversation_id, message.pk,
            brand.pk, result.name, max(0.0, min(1.0, result.value)), Score.Source.AUTO.value,
            author, result.explanations, message.conversation.channel, message.author_kind,
            message.sent_at)


_STAGE = "scoring_score_stage"


@cache
def _score_upsert_sql() -> str:
    # A re-run with equal values updates nothing (IS DISTINCT FROM).
    table = Score._meta.db_table
    names = ", ".join(_SCORE_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _SCORE_UPDATED)
    old = ", ".join(f"{table}.{c}" for c in _SCORE_UPDATED)
    new = ", ".join(f"EXCLUDED.{c}" for c in _SCORE_UPDATED)
    return (
        f"INSERT INTO {table} ({names}, created_at) SELECT {names}, now() FROM {_STAGE} "
        f"ON CONFLICT ON CONSTRAINT score_unique_judgment DO UPDATE SET {updates} "
        f"WHERE ({old}) IS DISTINCT FROM ({new})"
    )


def scores_save(*, rows: Sequence[tuple]) -> None:
    """Insert or overwrite automated scores (one row per subject, name, source, author);
    rows are tuples in _SCORE_COLUMNS order.

    On PostgreSQL the batch is COPYed into a temporary table and upserted from there in
    one statement: the ORM's bulk_create (and hand-written UNNEST arrays) spent more CPU
    escaping ~1,600 values per batch in Python than PostgreSQL took to write them
    (make bench-scoring); COPY formats rows in psycopg's C code."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        Score.objects.bulk_create(
            [Score(**dict(zip(_SCORE_COLUMNS, row, strict=True))) for row in rows],
            update_conflicts=True,
            unique_fields=["subject_type", "subject_id", "name", "source", "author"],
            update_fields=list(_SCORE_UPDATED), batch_size=500,
        )
        return
    explanations = _SCORE_COLUMNS.index("explanations")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} AS "
            f"SELECT {', '.join(_SCORE_COLUMNS)} FROM {Score._meta.db_table} WITH NO DATA"
        )
        with cursor.copy(f"COPY {_STAGE} ({', '.join(_SCORE_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                row = list(row)
                row[explanations] = json.dumps(row[explanations], separators=(",", ":"))
                copy.write_row(row)
        cursor.execute(_score_upsert_sql())
        cursor.execute(f"DELETE FROM {_STAGE}")


def _is_scored_outbound(message: Message) -> bool:
    return message.direction == Direction.OUTBOUND and message.author_kind in (
        AuthorKind.AI, AuthorKind.HUMAN
    )


# What scoring reads of a message and its conversation (the rest is not loaded).
_MESSAGE_FIELDS = ("id", "conversation_id", "direction", "author_kind", "body", "body_new",
                   "sent_at", "conversation__id", "conversation__channel",
                   "conversation__business_address", "conversation__customer_address")


def messages_score(*, message_ids: Sequence[int]) -> int:
    """Score messages and run the checks; idempotent (same rows, same flags on a re-run).
    Messages whose text retention purged are left out (their scores stay).

    Every message gets its language (a `language` row naming the dimensions its language
    left unscored). Outbound AI and human messages get every dimension their language
    allows, brand_fit where the brand has examples, the overall brand-tone score (with the
    brand's QA-calibrated weights when it has them) and the checks; inbound customer
    messages get warmth and frustration (context for the replies).
    Returns the number of messages scored."""
    messages = list(
        # Purged by retention: the text is gone, and the scores it had stay as they are.
        Message.objects.filter(pk__in=list(message_ids), purged_at__isnull=True)
        .select_related("conversation")
        .only(*_MESSAGE_FIELDS).order_by("pk")
    )
    if not messages:
        return 0
    brands = conversation_brands_resolve(
        conversations={m.conversation_id: m.conversation for m in messages}.values()
    )
    outbound = [m for m in messages if _is_scored_outbound(m)]
    inbound = [m for m in messages
               if m.direction == Direction.INBOUND and m.author_kind == AuthorKind.CUSTOMER]
    rows: list[tuple] = []
    languages = {m.pk: language_detect(_text(m)) for m in inbound + outbound}

    def inputs(batch: Sequence[Message]) -> list[ScoringInput]:
        return [ScoringInput(_text(m), m.conversation.channel, m.author_kind,
                             brands[m.conversation_id], languages[m.pk][0]) for m in batch]

    if inbound:
        items = inputs(inbound)
        per_scorer = [(s, score_for_languages(s, items)) for s in INBOUND_SCORERS]
        for i, m in enumerate(inbound):
            brand = brands[m.conversation_id]
            skipped = [s.name for s, batch in per_scorer if batch[i] is None]
            rows.append(_score_row(m, brand, _language_result(*languages[m.pk], skipped),
                                   LANGUAGE_AUTHOR))
            rows += [_score_row(m, brand, batch[i], author_of(s))
                     for s, batch in per_scorer if batch[i] is not None]

    findings: list[tuple[Message, Finding]] = []
    if outbound:
        tone = scorer_set_current()
        items = inputs(outbound)
        per_scorer = [(s, score_for_languages(s, items)) for s in tone.scorers]
        calibrations = calibrations_for(list({b.pk for b in brands.values()}))
        prompts = _system_prompts(message_ids=[m.pk for m in outbound])
        asked = _customer_prompts(messages=outbound)
        for i, m in enumerate(outbound):
            brand = brands[m.conversation_id]
            calibration = calibrations.get(brand.pk)
            results = []
            not_scored = {}
            for scorer, batch in per_scorer:
                if batch[i] is not None:
                    results.append(batch[i])
                    rows.append(_score_row(m, brand, batch[i], author_of(scorer)))
                elif getattr(scorer, "languages", None) is not None:
                    not_scored[scorer.name] = "language"
            if calibration is not None and calibration.fit_model:
                fit = BRAND_FIT.score(items[i].text, {r.name: r for r in results},
                                      calibration.fit_model)
                results.append(fit)
                rows.append(_score_row(m, brand, fit, author_of(BRAND_FIT)))
            rows.append(_score_row(m, brand, _language_result(*languages[m.pk], not_scored),
                                   LANGUAGE_AUTHOR))
            weights = calibration.qa_weights if calibration and calibration.qa_weights else None
            overall = tone.combine(results, brand, not_scored, weights)
            rows.append(_score_row(m, brand, overall, author_of(tone)))
            findings += [(m, f) for f in _checks(m, brand, overall, prompts.get(m.pk, ""),
                                                 asked.get(m.pk, ""))]

    with transaction.atomic():
        scores_save(rows=rows)
        if inbound:  # customer warmth feeds the outcome reports' sentiment trend
            dashboard_days_mark(conversation_ids={m.conversation_id for m in inbound})
        for message, finding in findings:
            flag_raise(
                conversation=message.conversation, kind=finding.kind,
                severity=finding.severity, subject_type=Flag.SubjectType.MESSAGE,
                subject_id=message.pk, evidence=finding.evidence,
            )
    return len(messages)


def _system_prompts(*, message_ids: Sequence[int]) -> dict[int, str]:
    prompts: dict[int, str] = {}
    for message_id, prompt in (
        AIStep.objects.filter(message_id__in=message_ids).exclude(system_prompt="")
        .order_by("occurred_at").values_list("message_id", "system_prompt")
    ):
        prompts[message_id] = prompt
    return prompts


def _customer_prompts(*, messages: Sequence[Message]) -> dict[int, str]:
    """The last customer message before each AI message that holds code (a backtick): only
    there can the reasoning check set a code sample aside, and only if the customer asked
    for it. One query, for those few messages alone."""
    ids = [m.pk for m in messages if m.author_kind == AuthorKind.AI and "`" in _text(m)]
    if not ids:
        return {}
    last_inbound = Subquery(
        Message.objects.filter(
            conversation=OuterRef("conversation"), direction=Direction.INBOUND,
            sent_at__lte=OuterRef("sent_at"),
        ).order_by("-sent_at", "-id").values("body")[:1]
    )
    return {
        pk: body or "" for pk, body in Message.objects.filter(pk__in=ids)
        .annotate(asked=last_inbound).values_list("pk", "asked")
    }


def _checks(message: Message, brand: BrandVoice, overall: Result, system_prompt: str,
            customer_prompt: str) -> list[Finding]:
    conversation = message.conversation
    region = auditor_settings.SCORING_PHONE_REGION
    business = {conversation.business_address, *auditor_settings.EMAIL_ADDRESSES,
                *(brand.allowed_contacts or ())}
    item = CheckInput(
        text=_text(message), channel=conversation.channel,
        customer_addresses=frozenset({normalize_address(conversation.customer_address,
                                                        region)}),
        business_addresses=frozenset(normalize_address(a, region) for a in business if a),
        customer_prompt=customer_prompt,
        system_prompt=system_prompt, phone_region=region,
    )
    findings = []
    if message.author_kind == AuthorKind.AI:
        leak = reasoning_leak_check(item)
        if leak:
            findings.append(leak)
    pii = pii_leak_check(item)
    if pii:
        findings.append(pii)
    expl = overall.explanations
    below = expl["score_100"] < brand.tone_threshold
    if below or expl["critical_broken"]:
        findings.append(Finding(
            Flag.Kind.TONE_OFF_BRAND, "high" if expl["critical_broken"] else "medium",
            {
                "brand": brand.name,
                "score_100": expl["score_100"],
                "threshold_100": brand.tone_threshold,
                "below_threshold": below,
                "critical_broken": expl["critical_broken"],
                "fits": expl["fits"],
                "weights": expl["weights"],
            },
        ))
    return findings


# When the broker last failed to take a task (time.monotonic()), per process.
_broker_failed_at: float | None = None


def message_ids_enqueue(*, message_ids: Sequence[int]) -> int:
    """Queue scoring tasks in batches of SCORING_BATCH_SIZE; returns the tasks queued.

    A broker that cannot be reached is logged, not raised: the catch-up sweep queues the
    messages later. Reaching a dead broker takes seconds (client retries), and this runs
    after the webhook's commit, before its answer; so after a failure the process does not
    try again for SCORING_BROKER_BACKOFF_SECONDS and leaves those messages to the sweep."""
    global _broker_failed_at
    from .tasks import score_messages  # tasks import services

    backoff = auditor_settings.SCORING_BROKER_BACKOFF_SECONDS
    if _broker_failed_at is not None and time.monotonic() - _broker_failed_at < backoff:
        logger.info("broker unavailable lately; %d messages left to the catch-up sweep",
                    len(message_ids))
        return 0
    size = auditor_settings.SCORING_BATCH_SIZE
    queued = 0
    for i in range(0, len(message_ids), size):
        try:
            score_messages.apply_async(
                args=[list(message_ids[i:i + size])], queue=auditor_settings.SCORING_QUEUE,
                retry=False,
            )
        except Exception:  # broker down: the catch-up sweep will find them
            _broker_failed_at = time.monotonic()
            logger.warning("could not queue scoring of %d messages; the catch-up sweep will",
                           len(message_ids) - i, exc_info=True)
            return queued
        queued += 1
    _broker_failed_at = None
    return queued


def message_recorded_receive(*, message_ids: Sequence[int], **kwargs: Any) -> None:
    """Receiver of conversations.signals.message_recorded (connected in ScoringConfig):
    queue the messages' scoring, in batches, once the surrounding transaction (if any)
    commits. A batch of events arrives as one call, so it costs a few tasks, not one each."""
    if auditor_settings.SCORING_ON_RECORD:
        ids = list(message_ids)
        transaction.on_commit(lambda: message_ids_enqueue(message_ids=ids))


def score_explanations_scrub(*, message_ids: Sequence[int]) -> int:
    """Retention purged these messages' bodies: empty the words the tone scores quoted from
    them (`text` in explanations). Values, spans and figures stay, so aggregates and the
    replay's numbers do not change. Returns the rows rewritten."""
    from conversations.retention import scrub_excerpts

    changed = []
    for score in Score.objects.filter(message_id__in=message_ids).only("explanations"):
        score.explanations, did = scrub_excerpts(score.explanations)
        if did:
            changed.append(score)
    Score.objects.bulk_update(changed, ["explanations"], batch_size=500)
    return len(changed)
