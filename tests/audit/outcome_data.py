"""A small week of conversations, sent through the signed events webhook, whose outcome
figures are worked out by hand below (tests/audit/test_outcomes*.py)."""

import json
from datetime import date, datetime

from django.test import Client

from tests.support.events import PATH, SECRET, WIDGET
from tests.support.signing import events_headers

DAY1, DAY2, DAY4 = date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 19)
TODAY = date(2026, 11, 22)


def at(day: date, hhmmss: str) -> str:
    return f"{day.isoformat()}T{hhmmss}Z"


def ref(key: str, customer: str, channel: str = "web") -> dict:
    return {"channel": channel, "external_id": key, "business_address": WIDGET,
            "customer_address": customer}


def msg(key: str, customer: str, pmid: str, kind: str, when: str, body: str = "") -> dict:
    author = {"kind": kind, "id": customer if kind == "customer" else f"{kind}-1"}
    if kind == "human":
        author = {"kind": "human", "id": "agent-7", "name": "Maya Diaz"}
    return {"type": "message.created", "timestamp": when, "data": {
        "channel": "web", "direction": "inbound" if kind == "customer" else "outbound",
        "author": author, "conversation": ref(key, customer), "provider_message_id": pmid,
        "body": body or f"message {pmid}", "sent_at": when}}


def event(kind: str, eid: str, key: str, customer: str, when: str, **data) -> dict:
    return {"type": kind, "id": eid, "timestamp": when,
            "data": {"conversation": ref(key, customer), **data}}


def outcome(eid: str, key: str, customer: str, when: str, **data) -> dict:
    return event("outcome.recorded", eid, key, customer, when, **data)


def step(eid: str, key: str, customer: str, when: str, model: str, version: str,
         cost: str) -> dict:
    return event("ai.step", eid, key, customer, when, operation="chat", request_model=model,
                 response_model=model, prompt={"name": "support", "version": version},
                 cost=float(cost))


# A (ann, day 1): AI answers in 60 s, resolved after 30 min, CSAT 5, NPS 10, converted
#   with 49.90 EUR; ann comes back on day 4 (A2), so A is a repeat contact, not contained.
# B (bob, day 1): AI in 120 s, handoff (queue billing) to Maya (team Billing), human
#   reply 600 s after bob wrote (420 s after the request), resolved at 11:20 (1200 s);
#   CSAT 4, NPS 8, converted with 100 USD and 20 EUR.
# C (cat, day 2): nobody answers; an outcome says escalated; NPS 0.
# D (dan, day 2): AI in 10 s, resolved after 300 s: contained.
# A2 (ann, day 4): AI in 30 s, not resolved, CSAT 2, NPS 3 (sent late in the tests).
def week_events() -> list[dict]:
    a, b, c, d = "conv-a", "conv-b", "conv-c", "conv-d"
    return [
        msg(a, "ann", "a1", "customer", at(DAY1, "10:00:00"), "Hi, I'd love to buy the lamp"),
        msg(a, "ann", "a2", "ai", at(DAY1, "10:01:00")),
        step("s-a", a, "ann", at(DAY1, "10:01:00"), "gpt-4.1", "v12", "0.020"),
        msg(a, "ann", "a3", "customer", at(DAY1, "10:20:00"), "Thank you so much, wonderful!"),
        outcome("o-a", a, "ann", at(DAY1, "10:30:00"), resolved=True, csat=5, nps=10,
                converted=True, revenue={"amount": "49.90", "currency": "EUR"}),
        event("conversation.closed", "close-a", a, "ann", at(DAY1, "10:40:00")),
        msg(b, "bob", "b1", "customer", at(DAY1, "11:00:00"), "My invoice is wrong"),
        msg(b, "bob", "b2", "ai", at(DAY1, "11:02:00")),
        step("s-b", b, "bob", at(DAY1, "11:02:00"), "gpt-4.1-mini", "v13", "0.004"),
        event("handoff.requested", "hr-b", b, "bob", at(DAY1, "11:03:00"),
              requested_by="customer"),
        event("handoff.queued", "hq-b", b, "bob", at(DAY1, "11:04:00"), queue="billing"),
        event("handoff.assigned", "ha-b", b, "bob", at(DAY1, "11:05:00"),
              agent={"id": "agent-7", "name": "Maya Diaz", "team": "Billing"}),
        msg(b, "bob", "b3", "human", at(DAY1, "11:10:00")),
        event("conversation.resolved", "res-b", b, "bob", at(DAY1, "11:20:00"),
              agent={"id": "agent-7"}),
        outcome("o-b", b, "bob", at(DAY1, "11:25:00"), resolved=True, csat=4, nps=8,
                converted=True, revenue={"amount": 100, "currency": "USD"}),
        outcome("o-b2", b, "bob", at(DAY1, "11:26:00"),
                revenue={"amount": "20.00", "currency": "EUR"}),
        msg(c, "cat", "c1", "customer", at(DAY2, "08:00:00"), "Where is my parcel?"),
        outcome("o-c", c, "cat", at(DAY2, "09:00:00"), escalated=True, nps=0),
        msg(d, "dan", "d1", "customer", at(DAY2, "12:00:00"), "Opening hours?"),
        msg(d, "dan", "d2", "ai", at(DAY2, "12:00:10")),
        step("s-d", d, "dan", at(DAY2, "12:00:10"), "gpt-4.1", "v13", "0.010"),
        outcome("o-d", d, "dan", at(DAY2, "12:05:00"), resolved=True),
    ]


def late_events() -> list[dict]:
    a2 = "conv-a2"
    return [
        msg(a2, "ann", "e1", "customer", at(DAY4, "09:00:00"), "The lamp broke, this is awful"),
        msg(a2, "ann", "e2", "ai", at(DAY4, "09:00:30")),
        step("s-e", a2, "ann", at(DAY4, "09:00:30"), "gpt-4.1", "v13", "0.030"),
        outcome("o-e", a2, "ann", at(DAY4, "09:30:00"), resolved=False, csat=2, nps=3),
    ]


def deliver(client: Client, events: list[dict], delivery_id: str) -> None:
    body = json.dumps(events).encode()
    response = client.post(PATH, body, content_type="application/json",
                           headers=events_headers(body, SECRET, msg_id=delivery_id,
                                                  timestamp=datetime.now().astimezone()))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "processed", response.json()
