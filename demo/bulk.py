"""The bulk writer for benchmarks (`seed_demo --conversations N`, bench/views.py,
bench/sweep.py): synthetic conversations written straight into the tables (COPY on
PostgreSQL, else bulk_create), with no raw events behind them. `demo_bulk_seed` tops them up;
`copy_rows` and `reserve_ids` are the binary COPY and id reservation the benchmarks reuse.
"""

import json
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from psycopg.adapt import Dumper
from psycopg.postgres import types as postgres_types
from psycopg.pq import Format

from conversations.models import (
    STATUS_RANK,
    AuthorKind,
    Channel,
    Conversation,
    Direction,
    Message,
    MessageStatusEvent,
    Participant,
)
from conversations.services import dashboard_days_mark

from .seed import AVA, BULK_BUSINESS_ADDRESS, MEDIA_BASE, PROVIDER, TWILIO_ERRORS, sms_segments

# --- bulk: synthetic volume for benchmarks ------------------------------------------------

# Lines by language and kind. Few and short on purpose: volume, not stories.
_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "open": ("Hi, where is my order? It was supposed to arrive yesterday 📦",
                 "Hello, I'd like to return a lamp I bought last week.",
                 "Hi! Is the oak bookshelf back in stock?"),
        "follow": ("The order number is BR-48213.", "I already tried that, it didn't work."),
        "ask_human": ("Can I talk to a real person please?", "I want to speak to an agent."),
        "thanks": ("Thanks, that helps! 🙏", "Great, thank you!"),
        "nudge": ("Hello? Is anyone there?", "Still waiting for an answer..."),
        "ai": ("Sorry for the delay! Your parcel is with the carrier and arrives within 2 days.",
               "Of course! I've started the return and emailed you a prepaid label.",
               "Yes, it's in stock and ships within 24 hours 😊"),
        "ai_handoff": ("Sure, I'm connecting you with a member of our team now.",),
        "human": ("Hi, Emma from the support team here. I've sent a replacement today.",
                  "Thanks for waiting! I've refunded the delivery fee to your card."),
    },
    "es": {
        "open": ("Hola, ¿dónde está mi pedido? Tenía que llegar ayer 📦",
                 "Buenas, quiero devolver una lámpara que compré la semana pasada.",
                 "¡Hola! ¿Tienen otra vez la estantería de roble?"),
        "follow": ("El número de pedido es BR-48213.", "Ya probé eso y no funcionó."),
        "ask_human": ("¿Puedo hablar con una persona, por favor?", "Quiero hablar con un agente."),
        "thanks": ("¡Gracias, me sirve mucho! 🙏", "Perfecto, muchas gracias."),
        "nudge": ("¿Hola? ¿Hay alguien?", "Sigo esperando respuesta..."),
        "ai": ("¡Perdona la demora! Tu paquete está con la transportista y llega en 2 días.",
               "¡Claro! Ya inicié la devolución y te mandé una etiqueta prepagada por correo.",
               "Sí, hay stock y sale en 24 horas 😊"),
        "ai_handoff": ("Claro, te paso con una persona de nuestro equipo.",),
        "human": ("Hola, soy Lucía del equipo de soporte. Hoy te enviamos un reemplazo.",
                  "¡Gracias por esperar! Te devolvimos el costo de envío a tu tarjeta."),
    },
    "pt": {
        "open": ("Oi, cadê meu pedido? Era para chegar ontem 📦",
                 "Olá, quero devolver uma luminária que comprei semana passada.",
                 "Oi! A estante de carvalho voltou ao estoque?"),
        "follow": ("O número do pedido é BR-48213.", "Já tentei isso e não funcionou."),
        "ask_human": ("Posso falar com um atendente humano?", "Quero falar com uma pessoa."),
        "thanks": ("Valeu, ajudou muito! 🙏", "Perfeito, obrigada!"),
        "nudge": ("Oi? Tem alguém aí?", "Ainda aguardando resposta..."),
        "ai": ("Desculpe a demora! Seu pacote está com a transportadora e chega em 2 dias.",
               "Claro! Já abri a devolução e enviei uma etiqueta pré-paga por e-mail.",
               "Sim, temos em estoque e sai em 24 horas 😊"),
        "ai_handoff": ("Claro, vou transferir você para alguém da nossa equipe.",),
        "human": ("Olá, aqui é o Rafael do atendimento. Enviamos um item novo hoje.",
                  "Obrigado por aguardar! Estornamos o frete no seu cartão."),
    },
    "fr": {
        "open": ("Bonjour, où est ma commande ? Elle devait arriver hier 📦",
                 "Bonjour, je voudrais retourner une lampe achetée la semaine dernière.",
                 "Bonjour ! La bibliothèque en chêne est-elle de nouveau disponible ?"),
        "follow": ("Le numéro de commande est BR-48213.", "J'ai déjà essayé, ça ne marche pas."),
        "ask_human": ("Je voudrais parler à un conseiller, svp.", "Je veux parler à un humain."),
        "thanks": ("Merci, ça m'aide beaucoup ! 🙏", "Parfait, merci !"),
        "nudge": ("Allô ? Il y a quelqu'un ?", "J'attends toujours une réponse..."),
        "ai": ("Désolée pour le retard ! Votre colis est chez le transporteur, livraison sous "
               "2 jours.",
               "Bien sûr ! Le retour est lancé, l'étiquette prépayée vous a été envoyée.",
               "Oui, elle est en stock et part sous 24 h 😊"),
        "ai_handoff": ("Bien sûr, je vous mets en relation avec un conseiller.",),
        "human": ("Bonjour, Camille du service client. Un remplacement part aujourd'hui.",
                  "Merci de votre patience ! Les frais de livraison vous sont remboursés."),
    },
    "de": {
        "open": ("Hallo, wo ist meine Bestellung? Sie sollte gestern kommen 📦",
                 "Guten Tag, ich möchte eine Lampe von letzter Woche zurückgeben.",
                 "Hi! Ist das Eichenregal wieder lieferbar?"),
        "follow": ("Die Bestellnummer ist BR-48213.", "Das habe ich schon versucht, geht nicht."),
        "ask_human": ("Kann ich bitte mit einem Menschen sprechen?",
                      "Ich möchte mit einem Mitarbeiter sprechen."),
        "thanks": ("Danke, das hilft! 🙏", "Super, vielen Dank!"),
        "nudge": ("Hallo? Ist da jemand?", "Ich warte immer noch auf eine Antwort..."),
        "ai": ("Entschuldige die Verzögerung! Dein Paket ist beim Versand und kommt in 2 Tagen.",
               "Klar! Die Rücksendung ist angelegt, das Etikett kommt per E-Mail.",
               "Ja, es ist auf Lager und geht in 24 Stunden raus 😊"),
        "ai_handoff": ("Gern, ich verbinde dich mit unserem Team.",),
        "human": ("Guten Tag, hier ist Jonas vom Kundenservice. Ersatz ist heute raus.",
                  "Danke für Ihre Geduld! Die Versandkosten sind erstattet."),
    },
    "ar": {
        "open": ("مرحبا، وين طلبي؟ كان المفروض يوصل أمس 📦",
                 "السلام عليكم، أريد إرجاع مصباح اشتريته الأسبوع الماضي.",
                 "مرحبا! هل رف الكتب الخشبي متوفر الآن؟"),
        "follow": ("رقم الطلب BR-48213.", "جربت هذا من قبل ولم ينجح."),
        "ask_human": ("أبي أكلم موظف لو سمحت", "أريد التحدث مع شخص حقيقي."),
        "thanks": ("شكرًا جزيلًا 🙏", "ممتاز، شكرًا!"),
        "nudge": ("مرحبا؟ هل يوجد أحد؟", "ما زلت أنتظر الرد..."),
        "ai": ("نعتذر عن التأخير! شحنتك مع شركة التوصيل وستصل خلال يومين.",
               "بالتأكيد! بدأت عملية الإرجاع وأرسلت لك ملصق الشحن بالبريد.",
               "نعم، المنتج متوفر ويُشحن خلال 24 ساعة 😊"),
        "ai_handoff": ("بالتأكيد، سأحولك إلى أحد زملائي الآن.",),
        "human": ("مرحبًا، معك عمر من فريق الدعم. أرسلنا لك بديلًا اليوم.",
                  "شكرًا على صبرك! أعدنا رسوم التوصيل إلى بطاقتك."),
    },
    "hi": {
        "open": ("नमस्ते, मेरा ऑर्डर कहाँ है? कल आना था 📦",
                 "नमस्ते, मुझे पिछले हफ्ते खरीदा लैंप वापस करना है।",
                 "हाय! क्या ओक बुकशेल्फ फिर से स्टॉक में है?"),
        "follow": ("ऑर्डर नंबर BR-48213 है।", "मैंने ये पहले ही ट्राई किया, काम नहीं किया।"),
        "ask_human": ("मुझे किसी इंसान से बात करनी है।", "please agent se baat karao"),
        "thanks": ("धन्यवाद, बहुत मदद हुई 🙏", "बढ़िया, शुक्रिया!"),
        "nudge": ("हैलो? कोई है?", "अभी भी जवाब का इंतज़ार है..."),
        "ai": ("देरी के लिए खेद है! आपका पार्सल कूरियर के पास है, 2 दिन में पहुँचेगा।",
               "ज़रूर! रिटर्न शुरू हो गया है, प्रीपेड लेबल ईमेल कर दिया है।",
               "हाँ, स्टॉक में है और 24 घंटे में शिप होगा 😊"),
        "ai_handoff": ("ज़रूर, मैं आपको हमारी टीम से जोड़ रही हूँ।",),
        "human": ("नमस्ते, मैं प्रिया, सपोर्ट टीम से। आज ही रिप्लेसमेंट भेज दिया है।",
                  "इंतज़ार के लिए धन्यवाद! डिलीवरी चार्ज आपके कार्ड में वापस कर दिया है।"),
    },
    "zh": {
        "open": ("你好，我的订单在哪里？本来昨天就该到了 📦",
                 "你好，我想退上周买的台灯。",
                 "你好！橡木书架有货了吗？"),
        "follow": ("订单号是 BR-48213。", "我已经试过了，没有用。"),
        "ask_human": ("请转人工客服。", "我要和真人说话。"),
        "thanks": ("谢谢，帮大忙了 🙏", "好的，谢谢！"),
        "nudge": ("你好？有人吗？", "还在等回复……"),
        "ai": ("抱歉久等！您的包裹已在快递途中，预计2天内送达。",
               "没问题！已为您办理退货，预付运单已发送到您的邮箱。",
               "有货的，24小时内发货 😊"),
        "ai_handoff": ("好的，正在为您转接人工客服。",),
        "human": ("您好，我是客服陈伟。今天已为您寄出新的商品。",
                  "感谢您的耐心等待！运费已退回您的银行卡。"),
    },
}
_PHRASE_BANK: dict[str, dict[str, tuple[tuple[str, int], ...]]] = {
    lang: {kind: tuple((text, sms_segments(text)) for text in texts)
           for kind, texts in kinds.items()}
    for lang, kinds in _PHRASES.items()
}
_CUSTOMER_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("Olivia Brown", "Noah Williams", "Ava Johnson 🌸", "Ethan Davis"),
    "es": ("Sofía Martínez", "Mateo García", "Valentina Ruiz", "Diego Hernández"),
    "pt": ("Ana Souza", "João Oliveira", "Larissa Costa ✨", "Pedro Alves"),
    "fr": ("Léa Bernard", "Hugo Petit", "Chloé Moreau", "Lucas Laurent"),
    "de": ("Lena Schmidt", "Felix Müller", "Mia Schneider", "Paul Fischer"),
    "ar": ("محمد العلي", "فاطمة الزهراء", "يوسف حداد", "ليلى منصور"),
    "hi": ("अनन्या शर्मा", "Rohan Gupta", "प्रिया सिंह", "Arjun Patel"),
    "zh": ("张伟", "王静", "李娜", "刘洋"),
}
_CALLING_CODES = {"en": "1", "es": "52", "pt": "55", "fr": "33", "de": "49", "ar": "966",
                  "hi": "91", "zh": "86"}
# Weighted pools: picking an index from a flat tuple is the cheapest weighted choice.
_LANGUAGE_POOL = tuple(
    lang for lang, weight in
    (("en", 30), ("es", 20), ("pt", 12), ("fr", 8), ("de", 8), ("ar", 6), ("hi", 8), ("zh", 8))
    for _ in range(weight)
)
_PATTERN_POOL = tuple(
    pattern for pattern, weight in
    (("ai_resolved", 60), ("handoff_engaged", 25), ("handoff_unanswered", 10), ("no_reply", 5))
    for _ in range(weight)
)
_BULK_HUMANS = (
    ("emma.walsh", "Emma Walsh"), ("lucia.fernandez", "Lucía Fernández"),
    ("rafael.souza", "Rafael Souza"), ("camille.martin", "Camille Martin"),
    ("jonas.becker", "Jonas Becker"), ("omar.haddad", "Omar Haddad"),
    ("priya.sharma", "Priya Sharma"), ("wei.chen", "陈伟 (Wei Chen)"),
)
_BULK_AI_METADATA = json.dumps(dict(AVA.metadata))
_CUSTOMER, _AI, _HUMAN = AuthorKind.CUSTOMER.value, AuthorKind.AI.value, AuthorKind.HUMAN.value
_INBOUND, _OUTBOUND = Direction.INBOUND.value, Direction.OUTBOUND.value
_WHATSAPP, _SMS = Channel.WHATSAPP.value, Channel.SMS.value
_RANK = {str(status): rank for status, rank in STATUS_RANK.items()}
_ERROR_63016 = TWILIO_ERRORS["63016"]
_ERROR_30003 = TWILIO_ERRORS["30003"]
_BULK_DAYS = 30  # spread over the last month
_ADVISORY_LOCK = 0x5EED_DE30  # one bulk seeder at a time per database


@cache
def _bulk_plan(pattern: str, size: int) -> tuple[tuple[str, str], ...]:
    """Who writes each of a conversation's `size` messages, and what kind of line."""
    plan: list[tuple[str, str]] = []
    asked = engaged = False
    for i in range(size):
        last = i == size - 1
        if pattern == "no_reply":
            plan.append((_CUSTOMER, "open" if i == 0 else "nudge"))
        elif i == 0:
            plan.append((_CUSTOMER, "open"))
        elif pattern != "ai_resolved" and asked:
            if pattern == "handoff_unanswered":
                plan.append((_CUSTOMER, "nudge"))
            elif plan[-1][0] == _CUSTOMER or not engaged:
                plan.append((_HUMAN, "human"))
                engaged = True
            else:
                plan.append((_CUSTOMER, "thanks" if last else "follow"))
        elif i % 2 == 1:
            ask = pattern != "ai_resolved" and plan[-1][1] == "ask_human"
            plan.append((_AI, "ai_handoff" if ask else "ai"))
            asked = asked or ask
        elif pattern != "ai_resolved" and i == 2:
            plan.append((_CUSTOMER, "ask_human"))
        else:
            plan.append((_CUSTOMER, "thanks" if last else "follow"))
    return tuple(plan)


# Seconds between a message and the next, by (previous author, next author).
_GAPS: dict[tuple[str, str], tuple[float, float]] = {
    (_CUSTOMER, _AI): (2, 40),
    (_AI, _CUSTOMER): (30, 1800),
    (_CUSTOMER, _CUSTOMER): (300, 7200),
    (_AI, _HUMAN): (60, 10800),
    (_HUMAN, _CUSTOMER): (30, 1200),
    (_CUSTOMER, _HUMAN): (20, 900),
    (_HUMAN, _HUMAN): (10, 120),
    (_AI, _AI): (2, 10),
}


class BulkSeedBusy(RuntimeError):
    """Another bulk run holds the lock on this database."""


@dataclass
class BulkSeedReport:
    wanted: int
    present: int
    conversations: int = 0
    participants: int = 0
    messages: int = 0
    status_events: int = 0

    @property
    def rows(self) -> int:
        return self.conversations + self.participants + self.messages + self.status_events

    def add(self, counts: tuple[int, int, int, int]) -> None:
        self.conversations += counts[0]
        self.participants += counts[1]
        self.messages += counts[2]
        self.status_events += counts[3]


@dataclass
class _Batch:
    conversations: list[tuple[Any, ...]] = field(default_factory=list)
    participants: list[tuple[Any, ...]] = field(default_factory=list)
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    status_events: list[tuple[Any, ...]] = field(default_factory=list)


# Column order of the rows the generator produces (model attribute names).
_CONVERSATION_FIELDS = (
    "id", "channel", "business_address", "customer_address", "status", "subject",
    "started_at", "last_activity_at", "last_customer_message_at", "closed_at",
    "message_count", "metadata", "created_at",
)
_PARTICIPANT_FIELDS = ("id", "conversation_id", "kind", "external_id", "display_name",
                       "metadata")
_MESSAGE_FIELDS = (
    "id", "conversation_id", "participant_id", "direction", "author_kind", "body", "provider",
    "provider_message_id", "sent_at", "status", "status_rank", "status_at", "error_code",
    "num_segments", "media", "metadata", "raw_event_id", "created_at",
)
# No id: nothing points at a status event, so the database numbers them.
_STATUS_EVENT_FIELDS = (
    "message_id", "conversation_id", "provider", "provider_message_id", "status",
    "provider_status", "error_code", "error_message", "occurred_at", "raw_event_id",
    "metadata",
)


def demo_bulk_present() -> int:
    return Conversation.objects.filter(
        business_address=BULK_BUSINESS_ADDRESS, metadata__demo="bulk"
    ).count()


def demo_bulk_seed(
    *,
    conversations: int,
    messages_per_conversation: int = 5,
    batch_size: int = 5000,
    workers: int = 1,
    now: datetime | None = None,
    use_copy: bool | None = None,
    on_progress: Callable[[int, int], Any] | None = None,
) -> BulkSeedReport:
    """Top the synthetic bulk conversations up to `conversations`; never removes any.

    Rows are written directly (COPY on PostgreSQL, else bulk_create), one transaction per
    batch, so an interrupted run keeps whole batches and the next run tops up. On
    PostgreSQL `workers` > 1 writes batches in parallel, each thread on its own connection
    (so, unlike workers=1, not inside the caller's transaction).
    `on_progress(added, missing)` is called once before the first batch, then after each.
    """
    if messages_per_conversation < 1 or batch_size < 1 or workers < 1:
        raise ValueError("messages_per_conversation, batch_size and workers must be >= 1")
    postgres = connection.vendor == "postgresql"
    use_copy = postgres if use_copy is None else use_copy
    if use_copy and not postgres:
        raise ValueError("COPY needs PostgreSQL")
    if not postgres:
        workers = 1  # SQLite has one writer at a time anyway
    now = now or timezone.now()
    if postgres:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_ADVISORY_LOCK])
            if not cursor.fetchone()[0]:
                raise BulkSeedBusy("another seed_demo bulk run holds the lock on this database")
    try:
        present = demo_bulk_present()
        report = BulkSeedReport(wanted=conversations, present=present)
        missing = max(0, conversations - present)
        sizes = [min(batch_size, missing - start) for start in range(0, missing, batch_size)]
        if on_progress:
            on_progress(0, missing)
        write = partial(
            _bulk_write_batch,
            messages_per_conversation=messages_per_conversation,
            now=now,
            writer=copy_rows if use_copy else _bulk_create_rows,
        )
        # One generator per batch: threads never share one, and a rerun is reproducible.
        jobs = [(size, random.Random(f"{present}:{index}")) for index, size in enumerate(sizes)]

        def done(counts: _BatchCounts) -> None:
            report.add(counts)
            if on_progress:
                on_progress(counts[0], missing)

        if workers == 1:
            for size, rng in jobs:
                done(write(size=size, rng=rng))
        else:
            _bulk_parallel(jobs=jobs, write=write, workers=workers, on_done=done)
        if postgres and report.conversations * 10 >= conversations:
            # Grew by a tenth or more: fresh statistics, or the planner keeps thinking the
            # tables are small (autovacuum may be slow to notice, or off).
            with connection.cursor() as cursor:
                for model in (Conversation, Participant, Message, MessageStatusEvent):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        if report.conversations:
            # Written around the services: mark the days spanned for the dashboard rollups.
            dashboard_days_mark(moments=[now - timedelta(days=d) for d in range(_BULK_DAYS + 2)])
        return report
    finally:
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK])


_BatchCounts = tuple[int, int, int, int]  # conversations, participants, messages, statuses


def _bulk_write_batch(
    *,
    size: int,
    rng: random.Random,
    messages_per_conversation: int,
    now: datetime,
    writer: Callable[[type[Model], Sequence[str], Sequence[tuple[Any, ...]]], None],
) -> _BatchCounts:
    with transaction.atomic():
        batch = _bulk_batch(
            size=size, messages_per_conversation=messages_per_conversation, now=now, rng=rng
        )
        writer(Conversation, _CONVERSATION_FIELDS, batch.conversations)
        writer(Participant, _PARTICIPANT_FIELDS, batch.participants)
        writer(Message, _MESSAGE_FIELDS, batch.messages)
        writer(MessageStatusEvent, _STATUS_EVENT_FIELDS, batch.status_events)
    return (len(batch.conversations), len(batch.participants), len(batch.messages),
            len(batch.status_events))


def _bulk_parallel(
    *,
    jobs: Sequence[tuple[int, random.Random]],
    write: Callable[..., _BatchCounts],
    workers: int,
    on_done: Callable[[_BatchCounts], None],
) -> None:
    # PostgreSQL does the heavy part (parsing, indexes, foreign-key checks at commit) in
    # one backend per connection: two connections use two cores.
    def run(size: int, rng: random.Random) -> _BatchCounts:
        try:
            return write(size=size, rng=rng)
        finally:
            connection.close()  # this thread's own connection

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seed_demo")
    try:
        futures = [pool.submit(run, size, rng) for size, rng in jobs]
        for future in as_completed(futures):
            on_done(future.result())
    finally:
        # On an error, batches not started are dropped; running ones finish (or roll back).
        pool.shutdown(wait=True, cancel_futures=True)


def reserve_ids(model: type[Model], count: int) -> Sequence[int]:
    """Ids no other writer can take, for rows this transaction is about to insert."""
    if count == 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # nextval never hands a value out twice, even to concurrent sessions. The values
            # are usually one run; only when another writer interleaved is the list fetched.
            cursor.execute(
                "SELECT min(id), max(id), CASE WHEN max(id) - min(id) + 1 = count(*) THEN NULL"
                " ELSE array_agg(id) END FROM (SELECT nextval(pg_get_serial_sequence(%s, 'id'))"
                " AS id FROM generate_series(1, %s)) AS reserved",
                [table, count],
            )
            low, high, scattered = cursor.fetchone()
            return range(low, high + 1) if scattered is None else scattered
        # SQLite: the caller's transaction holds the write lock (BEGIN IMMEDIATE), so
        # nobody inserts between this read and our insert. AUTOINCREMENT's high-water mark
        # counts too, so ids of deleted rows are not reused.
        quoted = connection.ops.quote_name(table)
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quoted}")
        top = cursor.fetchone()[0]
        if connection.vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            top = max(top, row[0] if row else 0)
        return range(top + 1, top + 1 + count)


def _bulk_batch(
    *, size: int, messages_per_conversation: int, now: datetime, rng: random.Random
) -> _Batch:
    """Rows for `size` new conversations, consistent with each other and the models."""
    r = rng.random
    mpc = messages_per_conversation
    # Plan first (how many participants and messages), then reserve ids, then write rows.
    plans: list[tuple[str, str, str, tuple[tuple[str, str], ...], int]] = []
    n_participants = n_messages = 0
    for _ in range(size):
        channel = _WHATSAPP if r() < 0.65 else _SMS
        lang = _LANGUAGE_POOL[int(r() * len(_LANGUAGE_POOL))]
        pattern = _PATTERN_POOL[int(r() * len(_PATTERN_POOL))]
        count = max(1, mpc - 2 + int(r() * 5)) if mpc >= 3 else mpc  # average mpc
        plan = _bulk_plan(pattern, count)
        human = int(r() * len(_BULK_HUMANS)) if any(a == _HUMAN for a, _ in plan) else -1
        plans.append((channel, lang, pattern, plan, human))
        n_participants += 1 + any(a == _AI for a, _ in plan) + (human >= 0)
        n_messages += count
    conversation_ids = reserve_ids(Conversation, size)
    participant_ids = iter(reserve_ids(Participant, n_participants))
    message_ids = iter(reserve_ids(Message, n_messages))

    batch = _Batch()
    add_conversation = batch.conversations.append
    add_participant = batch.participants.append
    add_message = batch.messages.append
    add_status = batch.status_events.append
    now_ts = now.timestamp()
    utc = UTC
    fromts = datetime.fromtimestamp
    for (channel, lang, pattern, plan, human), conversation_id in zip(
        plans, conversation_ids, strict=True
    ):
        whatsapp = channel == _WHATSAPP
        phrases = _PHRASE_BANK[lang]
        customer = f"+{_CALLING_CODES[lang]}{7_000_000_000 + conversation_id}"
        # Offsets first, so the whole conversation (and its last status) ends in the past.
        offsets = [0.0]
        for (prev, _), (author, _) in zip(plan, plan[1:], strict=False):
            low, high = _GAPS[(prev, author)]
            offsets.append(offsets[-1] + low + r() * (high - low))
        start_ts = now_ts - offsets[-1] - 900 - r() * (_BULK_DAYS * 86400)

        customer_pid = next(participant_ids)
        names = _CUSTOMER_NAMES[lang]
        add_participant((
            customer_pid, conversation_id, _CUSTOMER, customer,
            names[int(r() * len(names))] if whatsapp else "",
            f'{{"wa_id": "{customer[1:]}"}}' if whatsapp else "{}",
        ))
        pids = {_CUSTOMER: customer_pid}
        if any(a == _AI for a, _ in plan):
            pids[_AI] = next(participant_ids)
            add_participant((pids[_AI], conversation_id, _AI, AVA.id, AVA.name,
                             _BULK_AI_METADATA))
        if human >= 0:
            pids[_HUMAN] = next(participant_ids)
            agent_id, agent_name = _BULK_HUMANS[human]
            add_participant((pids[_HUMAN], conversation_id, _HUMAN, agent_id, agent_name, "{}"))

        last_customer_at = None
        for (author, kind), offset in zip(plan, offsets, strict=True):
            message_id = next(message_ids)
            sent_ts = start_ts + offset
            sent_at = fromts(sent_ts, utc)
            options = phrases[kind]
            body, segments = options[int(r() * len(options))]
            media = "[]"
            if author == _CUSTOMER:
                last_customer_at = sent_at
                sid = f"SMb01c{message_id:028x}"
                if whatsapp and r() < 0.05:
                    sid = f"MMb01c{message_id:028x}"
                    media = (f'[{{"url": "{MEDIA_BASE}/{sid}/Media/ME{message_id:032x}", '
                             f'"content_type": "image/jpeg"}}]')
                add_message((
                    message_id, conversation_id, customer_pid, _INBOUND, author, body,
                    PROVIDER, sid, sent_at, "received", _RANK["received"], sent_at, "",
                    1 if whatsapp else segments, media, "{}", None, now,
                ))
                continue
            sid = f"SMb01c{message_id:028x}"
            # Twilio's callbacks: sent, then delivered (and read), or an error.
            sent_cb = sent_ts + 1 + r() * 2
            roll = r()
            if whatsapp:
                if roll < 0.01:
                    events = (("failed", sent_cb, "63016", _ERROR_63016),)
                else:
                    delivered = sent_cb + 1 + r() * 7
                    events = (("sent", sent_cb, "", ""), ("delivered", delivered, "", ""))
                    if roll < 0.86:
                        events += (("read", delivered + 5 + r() * 600, "", ""),)
            elif roll < 0.02:
                events = (("sent", sent_cb, "", ""),
                          ("undelivered", sent_cb + 3 + r() * 20, "30003", _ERROR_30003))
            else:
                events = (("sent", sent_cb, "", ""),
                          ("delivered", sent_cb + 2 + r() * 10, "", ""))
            final, final_ts, error_code, _ = events[-1]
            add_message((
                message_id, conversation_id, pids[author], _OUTBOUND, author, body,
                PROVIDER, sid, sent_at, final, _RANK[final], fromts(final_ts, utc),
                error_code, 1 if whatsapp else segments, media, "{}", None, now,
            ))
            for status, ts, code, error in events:
                add_status((
                    message_id, conversation_id, PROVIDER, sid, status, status, code, error,
                    fromts(ts, utc), None, "{}",
                ))

        last_ts = start_ts + offsets[-1]
        last_at = fromts(last_ts, utc)
        closed_at = None
        if now_ts - last_ts > 3 * 86400 and r() < 0.85:
            closed_at = fromts(last_ts + 600 + r() * 86400, utc)
        add_conversation((
            conversation_id, channel, BULK_BUSINESS_ADDRESS, customer,
            "closed" if closed_at else "open", "", fromts(start_ts, utc), last_at,
            last_customer_at, closed_at, len(plan),
            f'{{"demo": "bulk", "language": "{lang}", "pattern": "{pattern}"}}', now,
        ))
    return batch


class _JsonbTextDumper(Dumper):
    """Binary COPY of jsonb from text that is JSON already: no parse-and-serialize in Python."""

    format = Format.BINARY
    oid = postgres_types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()  # jsonb's binary format: version 1, then the text


def copy_rows(model: type[Model], names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    qn = connection.ops.quote_name
    fields = {f.attname: f for f in model._meta.concrete_fields}
    columns = ", ".join(qn(fields[name].column) for name in names)
    # Binary COPY spares the server parsing timestamps and numbers from text.
    types = [fields[name].db_type(connection).split("(")[0] for name in names]
    with connection.cursor() as cursor:
        raw = cursor.cursor  # Django's wrapper hides psycopg 3's copy()
        raw.adapters.register_dumper(str, _JsonbTextDumper)  # by oid, for jsonb columns only
        with raw.copy(
            f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)


def _bulk_create_rows(
    model: type[Model], names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    json_fields = {f.attname for f in model._meta.concrete_fields if f.get_internal_type()
                   == "JSONField"}
    objects = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        for name in json_fields & values.keys():
            values[name] = json.loads(values[name])  # the COPY path sends JSON text
        objects.append(model(**values))
    model.objects.bulk_create(objects, batch_size=1000)
