"""The customer rules without a database: identities from addresses, the linker inside
ingest's decide, and the channel-switch rule."""

from datetime import UTC, datetime, timedelta

import pytest

from conversations.customer_journey import (
    Failure,
    Thread,
    channel_switch_decide,
    flag_sentence_channel_switch,
)
from conversations.events import ConversationRef, IdentifyEvent, MessageEvent
from conversations.ingest_customers import address_identity, identify_identities
from conversations.ingest_decide import decide
from conversations.ingest_state import IngestState

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("channel", "address", "identity"), [
    ("sms", "+12125550147", ("phone", "+12125550147")),
    ("whatsapp", "whatsapp:+12125550147", ("phone", "+12125550147")),
    ("whatsapp", "+1 (212) 555-0147", ("phone", "+12125550147")),
    ("sms", "12345", None),  # a short code is no person
    ("email", "Maria@Example.COM", ("email", "maria@example.com")),
    ("email", "not-an-address", None),
    ("web", "visitor-1", None),
])
def test_the_identity_an_address_stands_for(channel, address, identity):
    assert address_identity(channel, address) == identity


def test_identify_identities_skips_what_is_not_one():
    assert identify_identities(phone="n/a", email="a@b.co", customer_id=" crm-1 ") == [
        ("email", "a@b.co"), ("external", "crm-1")]


def _msg(pmid, channel, customer, minutes=0, name=""):
    return MessageEvent(channel=channel, direction="inbound", author_kind="customer",
                        provider="twilio", provider_message_id=pmid, business_address="+1415",
                        customer_address=customer, occurred_at=T0 + timedelta(minutes=minutes),
                        author_name=name)


def _plan(events, state=None):
    return decide(state or IngestState(), events, raw_event_id=1, now=T0, window_hours=72)


def test_threads_of_one_number_share_a_new_customer_named_by_its_messages():
    plan = _plan([_msg("a", "sms", "+12125550147", name="Ana"),
                  _msg("b", "whatsapp", "+12125550147", 1)])
    customers = plan.customers
    [(ref, name)] = customers.new.items()
    assert name == "Ana" and set(customers.links.values()) == {ref}
    assert len(customers.links) == 2
    assert customers.identities == {("phone", "+12125550147"): ref}


def test_a_stored_identity_links_the_new_thread_to_its_customer():
    state = IngestState(identities={("phone", "+12125550147"): 12})
    plan = _plan([_msg("a", "sms", "+12125550147")], state)
    assert list(plan.customers.links.values()) == [12]
    assert not plan.customers.new and not plan.customers.identities


def test_a_web_visitor_is_nobody_until_identified_then_customers_merge_into_the_oldest():
    ref = ConversationRef(channel="web", external_id="chat-1")
    state = IngestState(keys={"events:chat-1": 40},
                        identities={("phone", "+12125550147"): 9, ("email", "a@b.co"): 5})
    plan = _plan([IdentifyEvent(conversation=ref, external_id="i1", occurred_at=T0,
                                phone="+12125550147", email="A@B.co", customer_id="crm-1")],
                 state)
    assert plan.customers.links == {40: 5}
    assert plan.customers.merges == {9: 5}
    assert plan.customers.identities == {("external", "crm-1"): 5}


def _t(pk, customer, channel, hours):
    return Thread(pk, customer, channel, T0 + timedelta(hours=hours))


def test_the_channel_switch_rule():
    threads = [_t(1, 7, "web", 0), _t(2, 7, "whatsapp", 5), _t(3, 7, "web", 6),
               _t(4, 8, "sms", 1), _t(5, 7, "email", 40)]
    failures = [Failure(100, 1, "handoff_dropped", T0 + timedelta(hours=1)),
                Failure(101, 4, "handoff_stalled", T0 + timedelta(hours=2))]
    [switch] = channel_switch_decide(threads, failures, timedelta(hours=24))
    # WhatsApp 4 h after the drop: yes. Web again: same channel. E-mail 39 h later: too late.
    # The other customer's stall: they never came back.
    assert switch.conversation_id == 2
    assert switch.evidence["failure_flag"] == 100
    assert switch.evidence["hours_after_failure"] == 4.0
    sentence = flag_sentence_channel_switch(switch.evidence)
    assert sentence == ("The customer's handoff on Web chat was dropped, and they came back "
                        "on WhatsApp 4 hours later.")
