"""Web-chat journeys for the reports (issue 17), sent as signed-event batches would be: over
the last three weeks, customers ask about products, orders and invoices; the AI answers
some alone and hands others to people in three teams; outcomes carry CSAT, NPS (0-10),
conversions with revenue in euros, dollars and pounds; some customers come back within a
week. Each visitor gives an e-mail address in the chat (a `customer.identified` event, as a
widget sends once the visitor is known), so the returning ones are one customer, and the
chat ends when the visitor leaves (`conversation.closed`): the product keeps one open thread
per customer and widget, so a visitor's next chat, under a new external id, is a new
conversation, counted as a repeat contact of the earlier one. Twelve days ago a new release
(gpt-4.1-mini with prompt v14) started taking every other conversation, so the release
comparison has two sides with figures.

One batch per journey, its webhook id derived from the journey key: a second run adds
nothing (demo/events.py's path).
"""

import json
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from conversations.applier import raw_event_ingest
from conversations.models import RawEvent

from .events import AVA, WebJourney, _batch, _customer, _msg

OLD = {"provider": "openai", "request_model": "gpt-4.1", "response_model": "gpt-4.1",
       "version": "v13", "cost": 0.0048}
NEW = {"provider": "openai", "request_model": "gpt-4.1-mini", "response_model": "gpt-4.1-mini",
       "version": "v14", "cost": 0.0011}
RELEASE_DAYS_AGO = 12

# (id, name, team)
AGENTS = {
    "billing": ("emma.walsh", "Emma Walsh", "Tier 1 EN"),
    "returns": ("priya.sharma", "Priya Sharma", "Warranty"),
    "sales": ("marcus.reed", "Marcus Reed", "Sales"),
    "billing-de": ("jonas.becker", "Jonas Becker", "Tier 2 DE"),
}


# (name, currency); the i-th journey's customer is the i-th (cycling), except that one
# journey in five is the customer of two journeys before coming back (a repeat contact).
CUSTOMERS = (
    ("Hannah", "EUR"), ("Tom", "GBP"), ("Aisha", "USD"), ("Lukas", "EUR"), ("Chloé", "EUR"),
    ("Mike", "USD"), ("Olivia", "GBP"), ("Sven", "EUR"), ("Grace", "USD"), ("Noah", "GBP"),
    ("Ines", "EUR"), ("Kenji", "USD"), ("Zoe", "GBP"),
)


def _customer_of(i: int) -> tuple[str, str, str]:
    """(visitor id, name, currency) of the i-th journey."""
    if returns(i):
        return _customer_of(i - 2)
    name, currency = CUSTOMERS[i % len(CUSTOMERS)]
    return f"visitor-r{i:02d}", name, currency


def returns(i: int) -> bool:
    """The i-th journey is a customer's second chat (the first was two journeys before)."""
    return i % 5 == 2 and i >= 2


def email_of(visitor: str, name: str) -> str:
    """The address the visitor gives in the chat: the same for each of their chats."""
    ascii_name = name.encode("ascii", "ignore").decode().lower() or "visitor"
    return f"{ascii_name}.{visitor.removeprefix('visitor-')}@example.com"


# Stories: (customer's opener, AI's answer, customer's reply, how it ends)
STORIES: tuple[tuple[str, str, str, str], ...] = (
    ("Does the Porto sofa come in forest green?",
     "Yes! Porto comes in forest green velvet, and it ships in about two weeks.",
     "Lovely, ordering it now.", "sale"),
    ("Can I still change the delivery address for order #{order}?",
     "Done: order #{order} now goes to the new address you gave at checkout.",
     "Perfect, thanks!", "answered"),
    ("I was charged twice for order #{order}.",
     "I can see two charges. I'm passing this to our billing team so a person can refund one.",
     "Ok, thanks.", "billing"),
    ("The lamp arrived with a cracked shade, order #{order}.",
     "I'm sorry! I've asked our returns team to arrange a replacement.",
     "Please hurry, it was a gift.", "returns"),
    ("Do you offer a discount for ordering six chairs?",
     "For larger orders our sales team can quote a price; I'm bringing one of them in.",
     "Great.", "sales"),
    ("Where is my parcel? Order #{order} was due yesterday.",
     "The carrier shows it out for delivery today before 6 pm.",
     "That's not what the tracking page says, this is the third time I ask.", "unhappy"),
    ("What's your returns window?",
     "You can return anything within 30 days of delivery, and returns are free.",
     "Good to know, thanks.", "answered"),
    ("Is the Lisboa table solid oak or veneer?",
     "Solid oak top with oak veneer legs. Would you like the matching bench too?",
     "Yes, both please.", "sale"),
    ("My invoice shows the wrong VAT number.",
     "I'll get our billing team to reissue it.",
     "Thanks.", "billing-de"),
    ("I want to cancel my order #{order}.",
     "I've asked a person to cancel it: it has already left the warehouse.",
     "Fine.", "returns"),
)

PRICES = {"sale": ("189.00", "349.00", "59.90", "1240.00"), "sales": ("864.00", "1530.00")}


def _chat(release: dict[str, Any], tokens: int) -> dict[str, Any]:
    return {"provider": release["provider"], "request_model": release["request_model"],
            "response_model": release["response_model"], "operation": "chat",
            "agent": {"name": "support-bot"},
            "prompt": {"name": "support-web", "version": release["version"]},
            "usage": {"input_tokens": tokens, "output_tokens": 60},
            "cost": release["cost"] * tokens / 1500, "latency_ms": 900 + tokens // 3,
            "finish_reason": "stop"}


def _journey(i: int) -> WebJourney:
    """The i-th journey: its customer, story, release and outcome, all from i."""
    visitor, name, currency = _customer_of(i)
    opener, answer, reply, ending = STORIES[(i * 7) % len(STORIES)]
    order = 7100 + 37 * i
    ago = timedelta(days=20 - i * 0.45, hours=(i * 5) % 9)
    new_release = ago < timedelta(days=RELEASE_DAYS_AGO) and i % 2 == 1
    release = NEW if new_release else OLD
    # The new release answers slower questions less well: its "answered" become unhappy
    # one time in three, and its customers rate a notch lower.
    if new_release and ending == "answered" and i % 3 == 0:
        reply, ending = "That doesn't answer my question.", "unhappy"
    lower = 1 if new_release else 0
    first = 0.2 + (i % 4) * 0.15  # the AI's first answer, minutes
    steps: list[tuple[float, str, dict[str, Any]]] = [
        (0, "message.created", _customer(visitor, name,
                                         opener.format(order=order))),
        (first - 0.05, "ai.step", _chat(release, 1300 + 40 * (i % 7))),
        (first, "message.created", _msg("outbound", AVA, answer.format(order=order))),
        (first + 1, "customer.identified", {"customer": {
            "email": email_of(visitor, name), "name": name}}),
        (first + 2, "message.created", _customer(visitor, name, reply)),
    ]
    end = first + 3
    outcome: dict[str, Any] = {}
    if ending in ("sale", "answered"):
        outcome = {"resolved": True, "csat": 5 - lower - (i % 2), "nps": 10 - lower - i % 3}
        if ending == "sale":
            amounts = PRICES["sale"]
            outcome |= {"converted": True, "revenue": {
                "amount": amounts[i % len(amounts)], "currency": currency}}
    elif ending == "unhappy":
        outcome = {"resolved": False, "csat": 2 - lower, "nps": 3 - lower - i % 2}
    else:
        queue = ending if ending != "billing-de" else "billing"
        agent_id, agent_name, team = AGENTS[ending]
        wait = 3 + (i * 11) % 25  # minutes in the queue
        steps += [(first + 0.1, "handoff.requested", {"requested_by": "ai",
                                                      "reason": f"needs {queue}"}),
                  (first + 0.2, "handoff.queued", {"queue": queue})]
        if i % 9 == 4:  # nobody took it before the customer left
            steps.append((first + 90, "conversation.closed", {}))
            outcome = {"resolved": False, "escalated": True, "csat": 1, "nps": 1}
            end = first + 91
        else:
            human = {"kind": "human", "id": agent_id, "name": agent_name}
            at = first + wait
            steps += [
                (at - 1, "handoff.assigned", {"agent": {"id": agent_id, "name": agent_name,
                                                        "team": team}}),
                (at, "message.created", _msg("outbound", human,
                                             f"Hi {name}, {agent_name.split()[0]} "
                                             "here: all sorted, you'll get an e-mail shortly.")),
                (at + 6, "conversation.resolved", {"agent": {"id": agent_id}}),
            ]
            end = at + 7
            outcome = {"resolved": True, "csat": 4 - lower + (i % 2), "nps": 7 + i % 3}
            if ending == "sales":
                amounts = PRICES["sales"]
                outcome |= {"converted": True, "revenue": {
                    "amount": amounts[i % len(amounts)], "currency": currency}}
    outcome["csat"] = max(1, min(5, outcome["csat"]))
    outcome["nps"] = max(0, min(10, outcome["nps"]))
    steps.append((end, "outcome.recorded", outcome))
    if not any(kind == "conversation.closed" for _, kind, _ in steps):
        steps.append((end + 1, "conversation.closed", {}))  # the visitor left the chat
    return WebJourney(f"web-report-{i:02d}", visitor, ago,
                      tuple(sorted(steps, key=lambda step: step[0])))


REPORT_JOURNEYS: tuple[WebJourney, ...] = tuple(_journey(i) for i in range(44))


def demo_report_journeys_seed(*, now: datetime | None = None) -> tuple[int, list[str]]:
    """Ingest the report journeys; returns (raw events added, dedupe keys that failed)."""
    now = now or timezone.now()
    added, failed = 0, []
    for journey in REPORT_JOURNEYS:
        start = now - journey.ago
        result = raw_event_ingest(
            provider="events", kind="events", dedupe_key=f"webhook:demo-{journey.key}",
            body=json.dumps(_batch(journey, start), ensure_ascii=False),
            content_type="application/json",
            received_at=start + timedelta(minutes=journey.steps[-1][0]),
        )
        added += not result.duplicate
        if result.raw_event.status == RawEvent.Status.FAILED:
            failed.append(result.raw_event.dedupe_key)
    return added, failed
