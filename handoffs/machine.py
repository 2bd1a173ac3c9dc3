"""The handoff state machine, declared once.

A handoff is one episode in which control passes from the AI to a human. `TRANSITIONS`
is the whole machine: (state, trigger) -> next state. A pair that is not in the table
does not apply (the event is still kept in the transition log, with why). The diagram in
docs/handoffs.md is drawn from this table and a test checks the two agree.

Triggers are what the outside world reports, already mapped from events:
    request   handoff.requested
    queue     handoff.queued
    assign    handoff.assigned (a second assign while assigned is a reassignment)
    engage    a human agent's outbound message
    return    handoff.returned (back to the AI)
    resolve   conversation.resolved
    close     conversation.closed

States may be skipped (a human who simply replies engages a handoff that was only
requested), and an event never moves a handoff back: ORDER ranks the states, and every
entry of the table moves forward (or, for a reassignment, stays).
"""

from enum import StrEnum


class State(StrEnum):
    REQUESTED = "requested"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    ENGAGED = "engaged"
    RESOLVED = "resolved"
    RETURNED = "returned"
    ABANDONED = "abandoned"


class Trigger(StrEnum):
    REQUEST = "request"
    QUEUE = "queue"
    ASSIGN = "assign"
    ENGAGE = "engage"
    RETURN = "return"
    RESOLVE = "resolve"
    CLOSE = "close"


S, T = State, Trigger

TRANSITIONS: dict[tuple[State, Trigger], State] = {
    (S.REQUESTED, T.QUEUE): S.QUEUED,
    (S.REQUESTED, T.ASSIGN): S.ASSIGNED,
    (S.REQUESTED, T.ENGAGE): S.ENGAGED,
    (S.REQUESTED, T.RETURN): S.RETURNED,
    (S.REQUESTED, T.RESOLVE): S.ABANDONED,
    (S.REQUESTED, T.CLOSE): S.ABANDONED,
    (S.QUEUED, T.ASSIGN): S.ASSIGNED,
    (S.QUEUED, T.ENGAGE): S.ENGAGED,
    (S.QUEUED, T.RETURN): S.RETURNED,
    (S.QUEUED, T.RESOLVE): S.ABANDONED,
    (S.QUEUED, T.CLOSE): S.ABANDONED,
    (S.ASSIGNED, T.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, T.ENGAGE): S.ENGAGED,
    (S.ASSIGNED, T.RETURN): S.RETURNED,
    (S.ASSIGNED, T.RESOLVE): S.ABANDONED,
    (S.ASSIGNED, T.CLOSE): S.ABANDONED,
    (S.ENGAGED, T.RETURN): S.RETURNED,
    (S.ENGAGED, T.RESOLVE): S.RESOLVED,
    (S.ENGAGED, T.CLOSE): S.RESOLVED,
}

# Where a conversation with no handoff in progress starts one. Usually a request; an
# assignment or queueing that arrives before its request (out-of-order delivery) starts
# there; a human who replies while the AI is in charge takes over (engaged at once; the
# services check that the AI was in charge). return, resolve and close never open one.
OPENING: dict[Trigger, State] = {
    T.REQUEST: S.REQUESTED,
    T.QUEUE: S.QUEUED,
    T.ASSIGN: S.ASSIGNED,
    T.ENGAGE: S.ENGAGED,
}

ORDER: dict[State, int] = {
    S.REQUESTED: 1,
    S.QUEUED: 2,
    S.ASSIGNED: 3,
    S.ENGAGED: 4,
    S.RESOLVED: 5,
    S.RETURNED: 5,
    S.ABANDONED: 5,
}

TERMINAL = frozenset({S.RESOLVED, S.RETURNED, S.ABANDONED})
ACTIVE = frozenset(set(State) - TERMINAL)
# States in which a customer is waiting for a human; each has an SLA limit.
WAITING = (S.REQUESTED, S.QUEUED, S.ASSIGNED)

# Conversation event types and what they trigger.
EVENT_TRIGGERS: dict[str, Trigger] = {
    "handoff.requested": T.REQUEST,
    "handoff.queued": T.QUEUE,
    "handoff.assigned": T.ASSIGN,
    "handoff.returned": T.RETURN,
    "conversation.resolved": T.RESOLVE,
    "conversation.closed": T.CLOSE,
}


def next_state(state: State, trigger: Trigger) -> tuple[State | None, str]:
    """The state a trigger moves a handoff to, or None with the reason it does not apply."""
    target = TRANSITIONS.get((state, trigger))
    if target is not None:
        return target, ""
    if state in TERMINAL:
        return None, f"the handoff already ended ({state})"
    opening = OPENING.get(trigger)
    if opening == state:
        return None, f"already {state}"
    if opening is not None and ORDER[opening] < ORDER[state]:
        return None, f"{trigger} would move the handoff back from {state}"
    return None, f"{trigger} does not apply in {state}"


def _check_table() -> None:
    for (state, _trigger), target in TRANSITIONS.items():
        assert state not in TERMINAL, state
        assert ORDER[target] >= ORDER[state], (state, target)


_check_table()
