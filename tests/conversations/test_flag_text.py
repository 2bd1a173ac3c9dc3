"""Every flag kind in words: sentences built from the evidence the real apply path wrote
(the scenario library played through the events webhook, messages scored by the scoring
service, spoofed mail posted the way Mailgun posts it), never from hand-made dicts."""

import re
from datetime import timedelta

import pytest

from conversations.events import MessageEvent
from conversations.flag_text import (
    duration_words,
    flag_kind_label,
    flag_sentence,
    flag_sentence_register,
    flag_summary,
)
from conversations.models import Flag
from conversations.services import message_record
from demo.scenarios import scenario_get
from scoring.models import BrandVoice
from scoring.services import messages_score, tone_drift_detect
from tests.scoring.test_scoring_consistency import TODAY, history  # noqa: F401 (a fixture)
from tests.support.email import BASIC, SIGNING_KEY, SUPPORT, T0, mail, mailgun
from tests.support.scenarios import play
from tests.support.scoring_brand import BRISA

pytestmark = pytest.mark.django_db

# What no sentence may show: internal names, JSON, Python reprs.
INTERNAL = re.compile(r"[a-z]+_[a-z_]+|[{}\[\]]|None|True|False|\bnull\b")


def sentence_of(kind: str, conversation=None) -> tuple[Flag, str]:
    qs = Flag.objects.filter(kind=kind)
    if conversation is not None:
        qs = qs.filter(conversation=conversation)
    flag = qs.get()
    text = flag_summary(flag)
    assert text and not INTERNAL.search(text), text
    assert text == flag_sentence(flag.kind, flag.evidence)
    return flag, text


def test_every_kind_has_its_own_sentence():
    generic = {kind: flag_sentence(kind, {}) for kind in Flag.Kind.values}
    for kind in Flag.Kind.values:
        assert "found by an automatic check" not in generic[kind], kind


def test_stalled_in_the_queue(client, settings):
    conversation, _ = play(client, settings, scenario_get("web-late-queue"))
    flag, text = sentence_of("handoff_stalled", conversation)
    e = flag.evidence
    assert text.startswith(f"Waited {duration_words(e['waited_seconds'])} in the queue for an "
                           "agent and was still waiting when this was found")
    assert f"the limit is {duration_words(e['allowed_seconds'])}" in text
    assert f"({duration_words(e['over_by_seconds'])} over)" in text


def test_stalled_twice_and_in_business_hours(client, settings):
    conversation, _ = play(client, settings, scenario_get("sms-late-twice"))
    flag, text = sentence_of("handoff_stalled", conversation)
    assert f"It stalled {len(flag.evidence['stalls'])} times" in text
    conversation, _ = play(client, settings, scenario_get("email-late-in-business-time"))
    flag, text = sentence_of("handoff_stalled", conversation)
    assert flag.evidence["business_hours"] is True
    assert "in business hours" in text


def test_a_stall_is_stamped_when_the_wait_ran_over(client, settings):
    conversation, _ = play(client, settings, scenario_get("web-late-queue"))
    flag = Flag.objects.get(kind="handoff_stalled", conversation=conversation)
    deadline = flag.evidence["deadline_at"]
    assert flag.raised_at.isoformat() == deadline
    assert flag.evidence["detected_at"] > deadline  # found later, by the sweep


@pytest.mark.parametrize("key, reason, words", [
    ("whatsapp-dropped-at-close", "closed_before_human",
     "Closed before a human replied: the conversation was closed"),
    ("email-dropped-at-resolve", "resolved_before_human",
     "Marked resolved before a human replied"),
    ("sms-ai-kept-talking", "ai_kept_answering",
     "The AI kept answering after handing over to a human: {ai_replies_after_request} AI "
     "replies while the customer waited ({allowed} allowed)."),
    ("whatsapp-window-expired", "whatsapp_window_expired",
     "WhatsApp's 24-hour window closed while the customer waited for a human"),
])
def test_each_drop_reason(client, settings, key, reason, words):
    conversation, _ = play(client, settings, scenario_get(key))
    flag, text = sentence_of("handoff_dropped", conversation)
    assert reason in flag.evidence["details"]
    detail = flag.evidence["details"][reason]
    assert words.format(**detail) in text, text
    if "waited_seconds" in detail:
        assert duration_words(detail["waited_seconds"]) in text


def test_a_window_drop_is_stamped_when_the_window_closed(client, settings):
    conversation, _ = play(client, settings, scenario_get("whatsapp-window-expired"))
    flag = Flag.objects.get(kind="handoff_dropped", conversation=conversation)
    closed = flag.evidence["details"]["whatsapp_window_expired"]["window_expired_at"]
    assert flag.raised_at.isoformat() == closed


def test_missed_after_ai_turns_and_at_close(client, settings):
    conversation, _ = play(client, settings, scenario_get("web-missed-request"))
    flag, text = sentence_of("handoff_missed", conversation)
    assert text.startswith(f"The customer asked for a person (“{flag.evidence['matched']}”)")
    assert f"the AI answered {flag.evidence['ai_turns']} times instead" in text
    conversation, _ = play(client, settings, scenario_get("sms-missed-at-close"))
    flag, text = sentence_of("handoff_missed", conversation)
    assert "the conversation was closed first" in text, text


@pytest.fixture
def brisa(db):
    return BrandVoice.objects.create(**BRISA, is_default=True)


def scored(body, *, author_kind="ai", channel="sms"):
    customer, business = "+12125550147", "+14155550100"
    message = message_record(event=MessageEvent(
        channel=channel, direction="outbound", author_kind=author_kind, provider="twilio",
        provider_message_id=f"SM-{abs(hash(body))}", business_address=business,
        customer_address=customer, occurred_at=T0, body=body))
    messages_score(message_ids=[message.pk])
    return message


def test_tone_off_brand(brisa):
    scored("hey lol calm down, ur order is gonna be late")
    flag, text = sentence_of("tone_off_brand")
    assert "used a banned phrase (a must-follow rule)" in text
    if flag.evidence["below_threshold"]:
        assert f"Brand tone {round(flag.evidence['score_100'])}/100, under " in text


def test_reasoning_and_pii_leaks(brisa):
    scored("<think>The customer is angry, offer 10%</think> Your refund is on its way.")
    _, text = sentence_of("reasoning_leak")
    assert text == ("The AI showed the customer what it should have kept to itself: "
                    "a block of the AI's internal reasoning.")
    scored("Your card 4111 1111 1111 1111 is charged; call 212 555 0199.", author_kind="human")
    _, text = sentence_of("pii_leak")
    assert "a payment card number" in text and "a phone number" in text
    assert "4111" not in text and "0199" not in text


def test_tone_drift(history):  # noqa: F811 (the fixture)
    (flag,) = tone_drift_detect(today=TODAY)
    _, text = sentence_of("tone_drift")
    e = flag.evidence
    assert text.startswith("The brand tone of AI replies on SMS fell: lately "
                           f"{round(e['ewma'] * 100)}/100 against a usual "
                           f"{round(e['baseline_mean'] * 100)}/100")


def test_spoofed_sender(client, settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "WEBHOOK_SECRET": [BASIC]}
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EMAIL_ADDRESSES": SUPPORT}
    ask = mail(msg_id="<ask@customer.test>", subject="Refund", text="Can a person refund me?")
    reply = mail(msg_id="<reply@acme.test>", subject="Re: Refund", sender=f"Lucía <{SUPPORT}>",
                 to="maria.jose@customer.test", at=T0 + timedelta(minutes=5),
                 in_reply_to="<ask@customer.test>", text="Refund done")
    assert mailgun(client, ask).status_code == 200
    assert mailgun(client, reply, verdicts=(("X-Mailgun-Spf", "Fail"),
                                            ("X-Mailgun-Dkim-Check-Result", "Fail"))
                   ).status_code == 200
    _, text = sentence_of("spoofed_sender")
    assert "could not confirm it (SPF fail, DKIM fail)" in text
    assert SUPPORT not in text


def test_an_unknown_kind_gets_a_sentence_without_its_internal_name():
    text = flag_sentence("citation_missing", {"score": 0.2})
    assert text.startswith("Citation missing: found by an automatic check.")
    assert "citation_missing" not in text
    assert flag_kind_label("citation_missing") == "Citation missing"


def test_registering_a_kind_is_one_call():
    flag_sentence_register("tool_failure_test", lambda e: f"The tool {e['tool']} failed.",
                           label="Tool failed")
    assert flag_sentence("tool_failure_test", {"tool": "refunds"}) == "The tool refunds failed."
    assert flag_kind_label("tool_failure_test") == "Tool failed"
    # A sentence that breaks falls back to the generic one instead of breaking a page.
    assert flag_sentence("tool_failure_test", {}).startswith("Tool failed: found by")


def test_durations_read_as_words():
    assert [duration_words(s) for s in (40, 35 * 60, 2 * 3600 + 14 * 60, 3600, 86400 + 7200)] \
        == ["40 s", "35 min", "2 h 14 min", "1 h", "1 day 2 h"]
