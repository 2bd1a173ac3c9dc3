"""Words for the machine's names on screen: handoff states, waits, triggers, delivery
statuses. Templates and views go through these (the `auditor` template filters too)."""

STATE_LABELS = {
    "requested": "Handoff requested",
    "queued": "In the queue",
    "assigned": "Assigned to an agent",
    "engaged": "With a human",
    "resolved": "Resolved",
    "returned": "Back with the AI",
    "abandoned": "Closed without a human",
}
WAIT_LABELS = {
    "requested": "Waiting for a queue",
    "queued": "Waiting in the queue",
    "assigned": "Waiting for the agent's first reply",
    "reply": "Waiting for the agent's next reply",
}
TRIGGER_LABELS = {
    "request": "handoff to a human requested",
    "queue": "put in a queue",
    "assign": "assigned to an agent",
    "engage": "a human replied",
    "return": "handed back to the AI",
    "resolve": "marked resolved",
    "close": "conversation closed",
}
REQUESTER_LABELS = {"ai": "the AI", "customer": "the customer", "rule": "a rule",
                    "human": "an agent"}
DIRECTION_LABELS = {"inbound": "from the customer", "outbound": "to the customer"}
# Channels that report no delivery status: a message there is never "unknown", there is
# simply nothing to report.
NO_RECEIPTS = {"web", "email"}


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, (state or "").replace("_", " ").capitalize())


def wait_label(kind: str) -> str:
    return WAIT_LABELS.get(kind, (kind or "").replace("_", " ").capitalize())


def trigger_label(trigger: str) -> str:
    return TRIGGER_LABELS.get(trigger, (trigger or "").replace("_", " "))


def requester_label(who: str) -> str:
    """Who asked for a handoff, as the replay says it: "requested by the AI"."""
    return REQUESTER_LABELS.get(who, (who or "").replace("_", " "))


def delivery_label(status: str, channel: str) -> str:
    if status in ("", "unknown"):
        return "no receipts on this channel" if channel in NO_RECEIPTS else "no receipt yet"
    return status.replace("_", " ")
