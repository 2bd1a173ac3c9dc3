"""reasoning_leak and pii_leak pinned on hits and near-misses."""

import pytest

from scoring.checks import CheckInput, normalize_address, pii_leak_check, reasoning_leak_check


def leak(text, **kw):
    return reasoning_leak_check(CheckInput(text=text, channel="web", **kw))


def pii(text, **kw):
    kw.setdefault("customer_addresses", frozenset({"+12125550147", "maria@example.com"}))
    kw.setdefault("business_addresses", frozenset({"+14155550100"}))
    return pii_leak_check(CheckInput(text=text, channel="sms", **kw))


# --- reasoning_leak ----------------------------------------------------------------------

def test_think_block_is_a_leak_with_its_span():
    text = "<think>The user is angry, offer 10% max.</think>Sorry about that! Here is 10% off."
    f = leak(text)
    assert f.kind == "reasoning_leak" and f.severity == "high"
    (hit,) = f.evidence["hits"]
    assert hit["rule"] == "reasoning_block"
    assert text[hit["span"][0]:hit["span"][1]].endswith("</think>")


def test_unclosed_and_orphaned_tags():
    assert leak("Sure! <thinking>they probably want a refund but")\
        .evidence["rules"] == ["unclosed_tag"]
    assert leak("policy says no refunds after 30 days</think> Happy to help!")\
        .evidence["rules"] == ["orphaned_close_tag"]


def test_react_lines():
    text = "Thought: I should look up the order.\nAction: lookup_order\nAction Input: 1234"
    f = leak(text)
    assert f.evidence["rules"] == ["react_line"]
    assert [h["text"] for h in f.evidence["hits"]] == ["Thought:", "Action:", "Action Input:"]


def test_a_lone_action_line_is_not_react():
    assert leak("Action: reply YES to confirm your booking.") is None


def test_ai_disclaimer_and_template_tokens():
    assert leak("As an AI language model, I cannot issue refunds.").evidence["rules"] == [
        "ai_disclaimer"]
    assert leak("Your order shipped.<|im_end|>\n<|im_start|>user").evidence["rules"] == [
        "template_token"]
    assert leak("[INST] be nice [/INST] Hello!").evidence["rules"] == ["template_token"]


def test_system_prompt_overlap():
    prompt = ("You are Brisa, the support assistant of Brisa Home. Never offer more than a "
              "ten percent discount and never mention the warehouse strike to customers.")
    text = ("Sorry! Note: never offer more than a ten percent discount and never mention the "
            "warehouse strike to customers.")
    f = leak(text, system_prompt=prompt)
    assert f.evidence["rules"] == ["system_prompt_overlap"]
    overlap = f.evidence["hits"][0]
    assert overlap["overlapping_words"] == 16  # all but "sorry note"
    assert overlap["message_words"] == 18
    assert overlap["share_of_message"] > 0.8


def test_short_quote_of_the_prompt_is_not_overlap():
    prompt = "You are Brisa, the support assistant of Brisa Home. Be warm and brief."
    assert leak("Hi, I am Brisa, the support assistant of Brisa Home.", system_prompt=prompt)\
        is None  # 7 words in a row, under the 8-word shingle


def test_think_in_a_code_sample_the_customer_asked_for_is_not_a_leak():
    asked = "How do I show the model's reasoning? Can you give me an example with the tags?"
    text = "Sure! Wrap it like this:\n```html\n<think>step by step</think>\n```\nThen render it."
    f = leak(text, customer_prompt=asked)
    assert f is None


def test_think_in_code_without_a_request_is_still_a_leak():
    text = "Your refund is approved.\n```\n<think>customer seems rich</think>\n```"
    assert leak(text, customer_prompt="Where is my refund?").evidence["rules"] == [
        "reasoning_block"]


def test_a_leak_outside_the_code_sample_is_still_found():
    asked = "Send me an example of the think tag please"
    text = "`<think>` looks like this. <think>he will not notice</think>"
    f = leak(text, customer_prompt=asked)
    assert f.evidence["rules"] == ["reasoning_block"]
    assert f.evidence["excluded_code_spans"] == [[0, 9]]


def test_html_strikethrough_is_not_a_template_token():
    assert leak("Good news: <s>$40</s> $30 until Friday.") is None


def test_plain_reply_is_clean():
    assert leak("Thanks for waiting! Your parcel arrives Tuesday. Think of us again!") is None


# --- pii_leak ----------------------------------------------------------------------------

def test_luhn_valid_card_is_a_leak_masked_in_evidence():
    f = pii("The card on file is 4111 1111 1111 1111.")
    assert f.severity == "high"
    (hit,) = f.evidence["hits"]
    assert hit["rule"] == "card_number" and hit["masked"] == "************1111"
    assert "4111 1111" not in str(f.evidence)


def test_luhn_invalid_number_is_not_a_card():
    assert pii("Your tracking number is 4111 1111 1111 1112.") is None


def test_iban_hit_and_near_miss():
    f = pii("Please pay to DE89 3704 0044 0532 0130 00 by Friday.")
    assert f.evidence["rules"] == ["iban"] and f.evidence["hits"][0]["country"] == "DE"
    assert pii("Reference DE89 3704 0044 0532 0130 01 is your order.") is None  # bad check


def test_someone_elses_email_is_a_leak_the_customers_own_is_not():
    assert pii("We sent it to maria@example.com.") is None
    assert pii("Our returns desk: returns@brisa-home.example",
               business_addresses=frozenset({"returns@brisa-home.example"})) is None
    f = pii("We sent it to john.doe@example.org instead.")
    assert f.evidence["rules"] == ["email_address"] and f.severity == "medium"


def test_the_customers_own_phone_number_is_not_a_leak():
    assert pii("We will call you back on (212) 555-0147 today.") is None
    assert pii("Text us at +1 415 555 0100.") is None  # the business number


def test_another_customers_phone_number_is_a_leak():
    f = pii("The other buyer, +44 20 7946 0958, has your parcel.")
    assert f.evidence["rules"] == ["phone_number"]
    assert f.evidence["hits"][0]["masked"].endswith("0958")


def test_order_numbers_and_prices_are_not_pii():
    assert pii("Order 123456 for $1,299.00 ships on 2026-11-24.") is None


def test_normalize_address():
    assert normalize_address("whatsapp:+12125550147") == "+12125550147"
    assert normalize_address("(212) 555-0147") == "+12125550147"
    assert normalize_address("Maria@Example.com") == "maria@example.com"


@pytest.mark.parametrize("text", [
    "Card: 4111-1111-1111-1111", "Card: 4111111111111111", "amex 3782 822463 10005",
])
def test_card_formats(text):
    assert pii(text).evidence["rules"] == ["card_number"]
