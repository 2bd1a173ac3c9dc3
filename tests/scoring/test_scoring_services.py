"""Scoring services on PostgreSQL: messages recorded through the ingest service, scored,
flagged, re-scored idempotently; brand assignment; catch-up selection; rescore command."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from conversations.events import MessageEvent
from conversations.models import AIStep, Flag
from conversations.services import message_record
from scoring.models import BrandVoice, Score
from scoring.selectors import brand_conversations, message_ids_to_score, message_scores
from scoring.services import (
    brand_voice_default,
    conversation_brand_assign,
    conversation_brands_resolve,
    messages_score,
    scorer_set_current,
)
from tests.support.scoring_brand import BRISA

pytestmark = pytest.mark.django_db

CUSTOMER = "+12125550147"
BUSINESS = "+14155550100"
_seq = iter(range(10**6))


@pytest.fixture
def brisa(db):
    return BrandVoice.objects.create(**BRISA, is_default=True)


def record(body, *, channel="sms", direction="outbound", author_kind="ai", at=None,
           customer=CUSTOMER, business=BUSINESS):
    if channel == "whatsapp":
        customer, business = f"whatsapp:{customer}", f"whatsapp:{business}"
    return message_record(event=MessageEvent(
        channel=channel, direction=direction, author_kind=author_kind, provider="twilio",
        provider_message_id=f"SM{next(_seq):08d}", business_address=business,
        customer_address=customer, occurred_at=at or timezone.now(), body=body,
    ))


def scores_of(message):
    return {s.name: s for s in Score.objects.filter(message=message)}


def test_outbound_ai_message_gets_every_dimension_and_overall(brisa):
    m = record("Brisa Home: your delivery is booked for Tuesday 9-12. Thanks for waiting!")
    assert messages_score(message_ids=[m.pk]) == 1
    scores = scores_of(m)
    assert set(scores) == {"formality", "warmth", "politeness", "readability", "length",
                           "emoji", "greeting_signoff", "phrases", "brand_tone", "language"}
    assert scores["language"].explanations["language"] == "en"
    assert scores["language"].explanations["not_scored"] == []
    tone = scores["brand_tone"]
    assert tone.author == f"brand_tone@{scorer_set_current().version}"
    assert tone.source == "auto" and tone.brand == brisa
    assert tone.channel == "sms" and tone.author_kind == "ai" and tone.occurred_at == m.sent_at
    assert tone.value >= 0.85
    assert scores["length"].explanations["encoding"] == "GSM-7"
    assert not Flag.objects.exists()


def test_inbound_customer_message_gets_warmth_and_frustration(brisa):
    m = record("This is the third time my order is late. Terrible.", direction="inbound",
               author_kind="customer")
    messages_score(message_ids=[m.pk])
    assert set(scores_of(m)) == {"warmth", "frustration", "language"}
    assert scores_of(m)["warmth"].value < 0.5
    assert scores_of(m)["frustration"].value > 0.6


def test_rescoring_changes_nothing(brisa):
    m = record("hey lol calm down, ur order is gonna be late 😂", channel="whatsapp")
    messages_score(message_ids=[m.pk])
    before = sorted(Score.objects.values_list("id", "name", "value", "author", "explanations"))
    flags_before = list(Flag.objects.values_list("id", "kind", "evidence"))
    messages_score(message_ids=[m.pk])
    assert sorted(Score.objects.values_list("id", "name", "value", "author",
                                            "explanations")) == before
    assert list(Flag.objects.values_list("id", "kind", "evidence")) == flags_before


def test_banned_phrase_raises_tone_off_brand_with_evidence(brisa):
    m = record("hey lol calm down, ur order is gonna be late", channel="sms")
    messages_score(message_ids=[m.pk])
    flag = Flag.objects.get(kind="tone_off_brand")
    assert flag.subject_type == "message" and flag.subject_id == m.pk
    assert flag.severity == "high"
    assert flag.evidence["critical_broken"] == ["banned_phrase"]
    assert flag.evidence["threshold_100"] == 70
    assert 0 <= flag.evidence["score_100"] <= 100


def test_email_missing_signoff_and_emoji_lower_the_score_below_threshold(brisa):
    good = record("Hi Maria,\n\nThank you for your patience. We have rebooked your delivery "
                  "for Tuesday.\n\nKind regards,\nThe Brisa Home team", channel="email",
                  customer="maria@example.com", business="support@brisa-home.example")
    bad = record("ok 👍👍 done!! we r gonna ship it lol 🎉🎉", channel="email",
                 customer="maria@example.com", business="support@brisa-home.example")
    messages_score(message_ids=[good.pk, bad.pk])
    assert scores_of(good)["brand_tone"].value > 0.85
    assert scores_of(bad)["brand_tone"].value < 0.7
    assert scores_of(bad)["greeting_signoff"].value == 0.0
    assert scores_of(bad)["emoji"].explanations["count"] == 4
    flag = Flag.objects.get(kind="tone_off_brand")
    assert flag.subject_id == bad.pk and flag.evidence["below_threshold"] is True


def test_reasoning_leak_uses_the_ai_steps_system_prompt(brisa):
    m = record("Sure. Never offer more than a ten percent discount to angry customers, so 10%.",
               channel="web")
    AIStep.objects.create(
        conversation=m.conversation, message=m, external_id="step-1",
        occurred_at=m.sent_at, operation="chat",
        system_prompt="You are Brisa. Never offer more than a ten percent discount to angry "
                      "customers. Be warm.",
    )
    messages_score(message_ids=[m.pk])
    flag = Flag.objects.get(kind="reasoning_leak")
    assert flag.evidence["rules"] == ["system_prompt_overlap"]


def test_think_in_requested_code_sample_is_not_flagged(brisa):
    at = timezone.now()
    record("Can you show me an example of the <think> tag in HTML?", channel="web",
           direction="inbound", author_kind="customer", at=at)
    m = record("Here you go:\n```html\n<think>reasoning here</think>\n```", channel="web",
               at=at + timedelta(seconds=5))
    messages_score(message_ids=[m.pk])
    assert not Flag.objects.filter(kind="reasoning_leak").exists()


def test_reasoning_leak_only_for_ai_messages_pii_for_humans_too(brisa):
    ai = record("<think>refund?</think> Done.", channel="web")
    human = record("<think>lol</think> The other customer is +44 20 7946 0958.",
                   channel="web", author_kind="human")
    messages_score(message_ids=[ai.pk, human.pk])
    assert set(Flag.objects.values_list("kind", "subject_id")) == {
        ("reasoning_leak", ai.pk), ("pii_leak", human.pk)}


def test_pii_leak_ignores_the_customers_own_number(brisa):
    own = record("We will call you on (212) 555-0147.", channel="sms")
    other = record("Call 4111 1111 1111 1111... sorry, wrong paste.", channel="sms")
    messages_score(message_ids=[own.pk, other.pk])
    (flag,) = Flag.objects.filter(kind="pii_leak")
    assert flag.subject_id == other.pk and flag.evidence["rules"] == ["card_number"]


def test_default_brand_seeded_from_settings(settings, db):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "BRAND_VOICE": {"name": "acme", "tone_threshold": 55,
                                                "banned_phrases": ["no can do"]}}
    brand = brand_voice_default()
    assert (brand.name, brand.is_default, brand.tone_threshold) == ("acme", True, 55)
    assert brand_voice_default().pk == brand.pk
    m = record("No can do, sorry.")
    messages_score(message_ids=[m.pk])
    assert scores_of(m)["brand_tone"].brand == brand


def test_unknown_brand_voice_setting_is_an_error(settings, db):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "BRAND_VOICE": {"tone": 1}}
    with pytest.raises(ValueError, match="tone"):
        brand_voice_default()


def test_brand_by_address_by_assignment_and_default(brisa):
    other = BrandVoice.objects.create(name="nube", business_addresses=["+14155550999"])
    a = record("Hi", business="+14155550999").conversation
    b = record("Hi", customer="+12125550111").conversation
    c = record("Hi", customer="+12125550122", business="+14155550777").conversation
    conversation_brand_assign(conversation=c, brand=other)
    resolved = conversation_brands_resolve(conversations=[a, b, c])
    assert {k: v.name for k, v in resolved.items()} == {a.pk: "nube", b.pk: "brisa",
                                                        c.pk: "nube"}
    assert set(brand_conversations(brand=other)) == {a, c}
    assert set(brand_conversations(brand=brisa)) == {b}


def test_to_score_lists_unscored_and_outdated_messages(brisa):
    done = record("Your order shipped.")
    todo = record("Your order shipped too.")
    inbound = record("thanks!", direction="inbound", author_kind="customer")
    system = record("Conversation closed", author_kind="system")
    messages_score(message_ids=[done.pk])
    tone = scorer_set_current()
    assert message_ids_to_score(tone=tone) == [todo.pk, inbound.pk]
    # A new version of any scorer makes every outbound message due again.
    Score.objects.filter(name="brand_tone").update(author="brand_tone@old")
    assert message_ids_to_score(tone=tone) == [done.pk, todo.pk, inbound.pk]
    assert system.pk not in message_ids_to_score(tone=tone, current_only=False)


def test_rescore_command_filters_and_rescores_after_a_brand_change(brisa):
    sms = record("Hi! calm down please, it ships today.", channel="sms")
    wa = record("Hi! calm down please, it ships today.", channel="whatsapp")
    call_command("rescore", "--no-progress", stdout=StringIO())
    assert Flag.objects.filter(kind="tone_off_brand").count() == 2
    brisa.banned_phrases = ["ships today"]
    brisa.save()
    out = StringIO()
    call_command("rescore", "--channel", "sms", "--brand", "brisa", "--no-progress",
                 "--since", (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d"),
                 stdout=out)
    assert "rescored 1 messages" in out.getvalue()

    def phrase(m):
        return [v["text"] for v in scores_of(m)["phrases"].explanations["violations"]]

    assert phrase(sms) == ["ships today"]
    assert phrase(wa) == ["calm down"]
    assert Score.objects.filter(message=sms, name="phrases").count() == 1


def test_rescore_command_rejects_unknown_brand(brisa):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no brand voice"):
        call_command("rescore", "--brand", "nope", "--no-progress")


def test_message_scores_selector(brisa):
    m = record("Your order shipped.")
    messages_score(message_ids=[m.pk])
    assert set(message_scores(message=m)) == set(scores_of(m))
