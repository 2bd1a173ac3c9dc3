"""`manage.py seed_demo`: hand-written journeys through the ingest path, and bulk volume."""

from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone

from conversations.models import (
    STATUS_RANK,
    Conversation,
    Flag,
    Message,
    MessageStatusEvent,
    Participant,
    RawEvent,
)
from demo.bulk import BulkSeedBusy, demo_bulk_seed
from demo.events import EMAIL_THREADS, JOURNEYS, QUALITY_JOURNEYS
from demo.handoffs import SPREAD_DAYS
from demo.journeys import SCENARIOS
from demo.outcomes import REPORT_JOURNEYS
from demo.replay import DemoOutbound, DemoWebhook, scenario_timeline
from demo.scenarios import KINDS, scenario_conversation, scenario_verify
from demo.scenarios import SCENARIOS as HANDOFF_SCENARIOS
from demo.seed import BULK_BUSINESS_ADDRESS, sms_segments, twilio_sid
from handoffs.models import Handoff, HandoffTransition, HumanAsk, SLAPolicy, Wait

WEB_JOURNEYS = (*JOURNEYS, *QUALITY_JOURNEYS)


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def table_counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (Conversation, Participant, Message, MessageStatusEvent, RawEvent, Handoff,
                      HandoffTransition, Wait, HumanAsk, Flag, SLAPolicy)
    )


def journeys():
    """The hand-written journeys' conversations, without the handoff scenarios' and the
    reports' (demo/outcomes.py)."""
    return Conversation.objects.exclude(keys__key__startswith="events:scn-").exclude(
        keys__key__startswith="events:web-report-")


def sid_of(scenario_key: str, index: int) -> str:
    scenario = next(s for s in SCENARIOS if s.key == scenario_key)
    return twilio_sid("MM" if scenario.lines[index].media else "SM", "demo", scenario_key, index)


def assert_counts_match_messages(conversations) -> None:
    checked = conversations.annotate(
        n=Count("messages"),
        first=Min("messages__sent_at"),
        last=Max("messages__sent_at"),
        last_customer=Max("messages__sent_at", filter=Q(messages__author_kind="customer")),
    )
    for c in checked:
        assert (c.message_count, c.started_at, c.last_activity_at) == (c.n, c.first, c.last)
        assert c.last_customer_message_at == c.last_customer


# --- the hand-written journeys ----------------------------------------------------------


def test_journeys_are_well_formed():
    now = timezone.now()
    threads = {(s.channel, s.business, s.customer) for s in SCENARIOS}
    assert len(threads) == len(SCENARIOS), "two journeys would share one open conversation"
    assert len({s.key for s in SCENARIOS}) == len(SCENARIOS)
    assert {"whatsapp", "sms"} == {s.channel for s in SCENARIOS}
    assert {"en", "es", "pt", "fr", "de", "ar", "hi", "zh"} <= {s.language for s in SCENARIOS}
    sids = set()
    for scenario in SCENARIOS:
        steps = scenario_timeline(scenario=scenario, now=now)  # raises on a future step
        for step in steps:
            if isinstance(step, DemoOutbound):
                sids.add(step.event.provider_message_id)
            elif step.kind == "message":
                sids.add(step.params["MessageSid"])
                assert now - timedelta(days=15) < step.received_at <= now
    assert len(sids) == sum(len(s.lines) for s in SCENARIOS)
    assert all(len(sid) == 34 and sid[:2] in {"SM", "MM"} for sid in sids)


def test_journey_timelines_do_not_depend_on_when_they_are_built():
    early = scenario_timeline(scenario=SCENARIOS[0], now=timezone.now() - timedelta(days=3))
    late = scenario_timeline(scenario=SCENARIOS[0], now=timezone.now())
    keys = [s.dedupe_key if isinstance(s, DemoWebhook) else s.event.provider_message_id
            for s in early]
    assert keys == [s.dedupe_key if isinstance(s, DemoWebhook) else s.event.provider_message_id
                    for s in late]


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("x" * 160, 1),
        ("x" * 161, 2),
        ("€" * 80, 1),  # extension table: two septets each
        ("€" * 81, 2),
        ("x" * 69 + "😊", 2),  # one emoji: UCS-2, and it takes two UTF-16 units
        ("Olá" + "x" * 67, 1),  # "á" is not GSM-7
        ("مرحبا" * 15, 2),
    ],
)
def test_sms_segments(body, segments):
    assert sms_segments(body) == segments


@pytest.mark.django_db
def test_default_mode_replays_the_journeys_through_the_ingest_path():
    out = seed()
    assert f"seeded {len(SCENARIOS)} conversations" in out

    assert Conversation.objects.filter(channel="whatsapp").exists()
    assert Conversation.objects.filter(channel="sms").exists()
    assert journeys().exclude(channel__in=["web", "email"]).count() == len(SCENARIOS)
    assert journeys().filter(channel="web").count() == len(WEB_JOURNEYS)
    # A `make run` user sees each answer-quality flag the demo data can raise.
    shown = set(Flag.objects.filter(conversation__channel="web").values_list("kind", flat=True))
    assert {"ungrounded_answer", "weak_retrieval", "tool_failure", "guardrail_tripped",
            "prompt_injection", "injection_followed", "ai_loop"} <= shown
    # (A scenario's conversation may be opened by an event dated after its first message.)
    assert_counts_match_messages(journeys())

    # Every customer message and status callback came through a processed raw event.
    assert not RawEvent.objects.exclude(status=RawEvent.Status.PROCESSED).exists()
    inbound = Message.objects.filter(direction="inbound", provider="twilio")
    assert inbound.count() == RawEvent.objects.filter(kind="message").count()
    assert not inbound.filter(raw_event__isnull=True).exists()
    twilio_statuses = MessageStatusEvent.objects.filter(conversation__in=journeys())
    assert twilio_statuses.count() == RawEvent.objects.filter(kind="status").count()
    assert not MessageStatusEvent.objects.filter(message__isnull=True).exists()

    bodies = list(Message.objects.values_list("body", flat=True))
    assert any(not body.isascii() for body in bodies)
    for sample in ("السلام", "发票", "नमस्ते", "📦", "🙏"):
        assert any(sample in body for body in bodies), sample
    timestamps = Message.objects.filter(conversation__in=journeys()).aggregate(
        first=Min("sent_at"), last=Max("sent_at"))
    assert timezone.now() - timedelta(days=15) < timestamps["first"]
    assert timestamps["last"] <= timezone.now()

    content_types = {m["content_type"] for media in Message.objects.values_list("media", flat=True)
                     for m in media}
    assert {"image/jpeg", "audio/ogg", "application/pdf"} <= content_types
    assert Message.objects.filter(direction="outbound", media__0__content_type="application/pdf")

    customer = Participant.objects.get(external_id="+5215587654321")
    assert customer.display_name == "Mariana López 🌻"
    assert customer.metadata == {"wa_id": "5215587654321"}
    ai = Participant.objects.filter(kind="ai").values_list("external_id", "display_name")
    assert set(ai) == {("support-bot", "Ava (AI)")}
    assert Participant.objects.filter(kind="human").values("external_id").distinct().count() > 5

    outbound = Message.objects.filter(direction="outbound")
    assert outbound.filter(author_kind="ai").exists() and outbound.filter(author_kind="human")
    assert outbound.filter(status="failed", error_code="63016").exists()
    assert outbound.filter(status="undelivered", error_code="30003").exists()
    assert outbound.filter(status="read").exists()

    # A read report that came before the delivered one leaves the message read.
    late = Message.objects.get(provider_message_id=sid_of("wa-en-read-before-delivered", 1))
    assert late.status == "read"
    reports = late.status_events.order_by("raw_event_id").values_list("status", flat=True)
    assert list(reports) == ["sent", "read", "delivered"]

    # Callbacks processed before the platform reported the message waited and were joined.
    early = Message.objects.get(provider_message_id=sid_of("wa-en-status-before-message", 1))
    waited = early.status_events.filter(raw_event__processed_at__lt=early.created_at)
    assert set(waited.values_list("status", flat=True)) == {"sent", "delivered"}
    assert early.status == "read"


@pytest.mark.django_db
def test_default_mode_twice_adds_nothing():
    seed()
    before = table_counts()
    count = (len(SCENARIOS) + len(WEB_JOURNEYS) + len(EMAIL_THREADS) + len(REPORT_JOURNEYS)
             + len(HANDOFF_SCENARIOS))
    assert seed() == f"demo data already present ({count} journeys)\n"
    assert table_counts() == before


# --- bulk ------------------------------------------------------------------------------


def bulk_conversations():
    return Conversation.objects.filter(business_address=BULK_BUSINESS_ADDRESS,
                                       metadata__demo="bulk")


def assert_bulk_consistent() -> None:
    conversations = bulk_conversations()
    assert_counts_match_messages(conversations)
    messages = Message.objects.filter(conversation__in=conversations)
    for status, rank in STATUS_RANK.items():
        assert not messages.filter(status=status).exclude(status_rank=rank).exists()
    assert not messages.filter(direction="inbound").exclude(author_kind="customer").exists()
    assert not messages.exclude(participant__conversation=F("conversation")).exists()
    assert not messages.exclude(participant__kind=F("author_kind")).exists()
    statuses = MessageStatusEvent.objects.filter(conversation__in=conversations)
    assert not statuses.exclude(message__conversation=F("conversation")).exists()
    assert not statuses.filter(message__direction="inbound").exists()
    # Each outbound message's current status is its latest report.
    for message in messages.filter(direction="outbound").prefetch_related("status_events")[:50]:
        last = max(message.status_events.all(), key=lambda s: s.occurred_at)
        assert (message.status, message.status_at) == (last.status, last.occurred_at)
    assert conversations.values("customer_address").distinct().count() == conversations.count()
    assert messages.aggregate(last=Max("sent_at"))["last"] <= timezone.now()


@pytest.mark.django_db
def test_bulk_mode_tops_up_to_the_target():
    seed()  # journeys already there: the bulk rows sit beside them
    journeys = Conversation.objects.count()

    out = seed("--conversations", "50", "--no-progress", "--workers", "1")
    assert "added 50 conversations" in out
    assert bulk_conversations().count() == 50
    assert Conversation.objects.count() == journeys + 50
    assert_bulk_consistent()
    assert Message.objects.filter(conversation__in=bulk_conversations()).count() > 50 * 3
    assert {"whatsapp", "sms"} == set(bulk_conversations().values_list("channel", flat=True))

    before = table_counts()
    assert "nothing to add" in seed("--conversations", "50", "--no-progress")
    assert "nothing to add" in seed("--conversations", "20", "--no-progress")
    assert table_counts() == before

    out = seed("--conversations", "80", "--no-progress", "--workers", "1", "--batch-size", "7")
    assert "added 30 conversations (50 were present)" in out
    assert bulk_conversations().count() == 80
    assert_bulk_consistent()


@pytest.mark.django_db
def test_bulk_without_copy_writes_the_same_shape():
    report = demo_bulk_seed(conversations=25, messages_per_conversation=3, batch_size=10,
                            use_copy=False)
    assert (report.conversations, bulk_conversations().count()) == (25, 25)
    assert report.messages == Message.objects.count()
    assert report.status_events == MessageStatusEvent.objects.count()
    assert_bulk_consistent()


@pytest.mark.django_db(transaction=True)
def test_bulk_in_parallel_beside_rows_written_meanwhile():
    # Workers commit on their own connections, hence a transactional test.
    demo_bulk_seed(conversations=30, batch_size=10, workers=2)
    now = timezone.now()
    Conversation.objects.create(channel="sms", business_address="+14155550100",
                                customer_address="+12125550100", started_at=now,
                                last_activity_at=now)
    report = demo_bulk_seed(conversations=60, batch_size=7, workers=2)
    assert report.conversations == 30
    assert bulk_conversations().count() == 60
    assert_bulk_consistent()


@pytest.mark.django_db
def test_bulk_refuses_to_run_beside_another_bulk_run():
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [0x5EED_DE30])
        with pytest.raises(BulkSeedBusy):
            demo_bulk_seed(conversations=5)
    assert not bulk_conversations().exists()


@pytest.mark.django_db
def test_web_chat_journeys_come_with_ai_steps_handoffs_and_outcomes():
    from conversations.models import AIStep, ConversationEvent, Outcome

    call_command("seed_demo", stdout=StringIO())
    web = journeys().filter(channel="web")
    assert web.count() == len(WEB_JOURNEYS) == 10
    demo_batches = RawEvent.objects.filter(provider="events",
                                           dedupe_key__startswith="webhook:demo-").exclude(
        dedupe_key__startswith="webhook:demo-web-report-")
    assert demo_batches.filter(status="processed").count() == 10
    # Every chat step is linked to the AI message it produced, but the one whose answer a
    # guardrail blocked (web-en-guardrail-blocked: no message went out).
    chats = AIStep.objects.filter(operation="chat", conversation__in=web)
    assert chats.count() == 12
    assert list(chats.filter(message__isnull=True).values_list("finish_reason", flat=True)) \
        == ["content_filter"]
    assert set(chats.exclude(message__isnull=True).values_list(
        "message__author_kind", flat=True)) == {"ai"}
    assert AIStep.objects.filter(conversation__in=web).exclude(tool_error="").count() == 2
    assert ConversationEvent.objects.filter(type="handoff.requested",
                                            conversation__in=web).count() == 3
    assert sorted(Outcome.objects.filter(conversation__in=web).values_list(
        "csat", flat=True)) == [1, 5, 5]
    assert web.filter(status="closed").count() == 1
    before = (AIStep.objects.count(), ConversationEvent.objects.count(), RawEvent.objects.count())
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "already present" in out.getvalue()
    assert before == (AIStep.objects.count(), ConversationEvent.objects.count(),
                      RawEvent.objects.count())


@pytest.mark.django_db
def test_email_threads_thread_and_strip_quotes(settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "EMAIL_ADDRESSES": ["support@brisa-home.example"]}
    call_command("seed_demo", stdout=StringIO())
    email = journeys().filter(channel="email")
    assert email.count() == 2
    invoice = email.get(messages__subject__startswith="Wrong VAT")
    messages = list(invoice.messages.order_by("sent_at"))
    assert [m.direction for m in messages] == ["inbound", "outbound", "inbound"]
    assert messages[1].author_kind == "human"
    assert messages[0].media[0]["content_type"] == "application/pdf"
    assert messages[2].body_new.strip() == "Sure, it's IE6388047V."
    german = email.exclude(pk=invoice.pk).get().messages.get()
    assert "der Stuhl Lisboa wackelt" in german.body  # HTML-only, iso-8859-1


# --- the handoff scenario library -------------------------------------------------------


@pytest.mark.django_db
def test_the_demo_plays_every_handoff_scenario_with_what_it_promises():
    seed()
    for scenario in HANDOFF_SCENARIOS:
        assert scenario_verify(scenario, scenario_conversation(scenario)) == []

    scenario_conversations = Conversation.objects.filter(keys__key__startswith="events:scn-")
    assert scenario_conversations.count() == len(HANDOFF_SCENARIOS)
    handoffs = Handoff.objects.filter(conversation__in=scenario_conversations)
    assert handoffs.count() == sum(len(s.states) for s in HANDOFF_SCENARIOS)
    # Per flag kind: one conversation per scenario that must raise it, none elsewhere.
    for kind in KINDS:
        flagged = scenario_conversations.filter(flags__kind=kind).distinct().count()
        assert flagged == sum(any(e.kind == kind for e in s.must) for s in HANDOFF_SCENARIOS)
    flags = Flag.objects.filter(conversation__in=scenario_conversations)
    assert flags.filter(kind="handoff_stalled", status="resolved").count() >= 5
    assert flags.filter(kind="handoff_stalled", status="open").exists()
    assert SLAPolicy.objects.filter(name="Web VIP queue", queue="vip").exists()

    # Spread over the recent past: nothing in the future, nothing older than the spread
    # (plus a week and a few days for a scenario kept to its weekday).
    sent = Message.objects.filter(conversation__in=scenario_conversations).aggregate(
        first=Min("sent_at"), last=Max("sent_at"))
    now = timezone.now()
    assert now - timedelta(days=SPREAD_DAYS + 11) < sent["first"] < now - timedelta(days=7)
    assert sent["last"] <= now - timedelta(minutes=59)

    before = table_counts()
    assert "already present" in seed()
    assert table_counts() == before
