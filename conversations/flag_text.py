"""Every flag in words: one sentence per finding, built from its evidence.

The one registry of flag sentences. A kind registers a function evidence -> sentence;
`flag_sentence(kind, evidence)` reads it, and an unknown kind gets a generic sentence that
still names the finding in words (its label), never its internal name. Handoff drops have
several reasons, each with its own sentence (`drop_reason_register`).

Registering a new kind is one call, in the module that raises it or its AppConfig.ready():

    flag_sentence_register("tool_failure", lambda e: f"A tool call failed: {e['tool']}.")

or as a decorator:

    @flag_sentence_register("tool_failure")
    def _tool_failure(evidence): ...

A sentence function takes the flag's evidence (a dict; it may lack keys from older
versions, so read with .get) and returns one or two sentences. It must not raise: a
failing function falls back to the generic sentence. Sentences carry no contact details
(the pages mask free text for viewers anyway, but a sentence names rules and figures, not
numbers or addresses).
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone

from .models import Flag

Evidence = Mapping[str, Any]
Sentence = Callable[[Evidence], str]

_SENTENCES: dict[str, Sentence] = {}
_DROP_REASONS: dict[str, Sentence] = {}
_LABELS: dict[str, str] = {}


def _register(table: dict[str, Sentence], key: str,
              fn: Sentence | None) -> Any:
    if fn is not None:
        table[key] = fn
        return fn

    def decorate(f: Sentence) -> Sentence:
        table[key] = f
        return f

    return decorate


def flag_sentence_register(kind: str, fn: Sentence | None = None, *,
                           label: str = "") -> Any:
    """Register the sentence of a flag kind (directly, or as a decorator when `fn` is
    omitted). `label`: the kind's name in words, for kinds not in Flag.Kind."""
    if label:
        _LABELS[kind] = label
    return _register(_SENTENCES, kind, fn)


def drop_reason_register(reason: str, fn: Sentence | None = None, *,
                         label: str = "") -> Any:
    """Register the sentence of one reason of a handoff_dropped flag (its `details`)."""
    if label:
        _LABELS[f"reason:{reason}"] = label
    return _register(_DROP_REASONS, reason, fn)


def flag_kind_label(kind: str) -> str:
    """The kind in words: Flag.Kind's label, a registered label, else the name made
    readable."""
    try:
        return str(Flag.Kind(kind).label)
    except ValueError:
        return _LABELS.get(kind) or kind.replace("_", " ").strip().capitalize() or "Finding"


def drop_reason_label(reason: str) -> str:
    return _LABELS.get(f"reason:{reason}") or reason.replace("_", " ").capitalize()


def flag_sentence(kind: str, evidence: Evidence | None) -> str:
    evidence = evidence if isinstance(evidence, Mapping) else {}
    fn = _SENTENCES.get(kind)
    if fn is not None:
        try:
            text = fn(evidence)
        except Exception:  # noqa: BLE001 - a sentence must never break a page
            text = ""
        if text:
            return text
    return generic_sentence(kind)


def generic_sentence(kind: str) -> str:
    return (f"{flag_kind_label(kind)}: found by an automatic check. "
            "The figures behind it are in the evidence.")


def flag_summary(flag: Any) -> str:
    """The sentence of a Flag (or any object with `kind` and `evidence`)."""
    return flag_sentence(flag.kind, flag.evidence)


# --- words for figures -----------------------------------------------------------------------


def duration_words(seconds: Any) -> str:
    """2 h 14 min / 35 min / 40 s / 3 days 2 h."""
    try:
        total = int(round(abs(float(seconds))))
    except (TypeError, ValueError):
        return "an unknown time"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def moment_words(value: Any) -> str:
    """An ISO moment from evidence in the site's time zone: "Mon 16 Nov 10:02"."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return ""
    if at.tzinfo is not None:
        at = timezone.localtime(at)
    return at.strftime("%a %d %b %H:%M")


def _count(n: Any, one: str, many: str | None = None) -> str:
    n = int(n or 0)
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _listing(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# The waits of the handoff machine (handoffs.models.Wait.Kind), as what the customer waited for.
WAIT_WORDS = {
    "requested": "for the handoff to reach a queue or an agent",
    "queued": "in the queue for an agent",
    "assigned": "for the assigned agent's first reply",
    "reply": "for the agent's next reply",
}
STATE_WORDS = {
    "requested": "not yet in a queue", "queued": "in the queue",
    "assigned": "assigned to an agent who had not replied yet",
    "engaged": "with a human", "resolved": "resolved", "returned": "back with the AI",
    "abandoned": "closed without a human",
}


def wait_words(kind: str) -> str:
    return WAIT_WORDS.get(kind, "for a human")


def state_words(state: str) -> str:
    return STATE_WORDS.get(state, (state or "").replace("_", " "))


# --- the handoff findings --------------------------------------------------------------------


@flag_sentence_register(Flag.Kind.HANDOFF_STALLED)
def _stalled(e: Evidence) -> str:
    waited = e.get("waited_seconds")
    allowed = e.get("allowed_seconds")
    text = f"Waited {duration_words(waited)} {wait_words(e.get('state', ''))}"
    if e.get("detected") is None and e.get("detected_at"):
        # Found by the sweep while the customer was still waiting: the figures are then.
        text += " and was still waiting when this was found"
    if allowed:
        text += f"; the limit is {duration_words(allowed)}"
        text += " in business hours" if e.get("business_hours") else ""
        over = e.get("over_by_seconds")
        if over and float(over) > 0:
            text += f" ({duration_words(over)} over)"
    text += "."
    stalls = e.get("stalls") or []
    if len(stalls) > 1:
        text += f" It stalled {len(stalls)} times in this handoff."
    return text


@drop_reason_register("closed_before_human", label="Closed before a human replied")
def _closed(d: Evidence) -> str:
    return (f"Closed before a human replied: the conversation was closed "
            f"{duration_words(d.get('waited_seconds'))} after the handoff was requested, "
            f"while it was {state_words(d.get('state_when_ended', ''))}.")


@drop_reason_register("resolved_before_human", label="Closed before a human replied")
def _resolved(d: Evidence) -> str:
    return (f"Marked resolved before a human replied: "
            f"{duration_words(d.get('waited_seconds'))} after the handoff was requested, "
            f"while it was {state_words(d.get('state_when_ended', ''))}.")


@drop_reason_register("ai_kept_answering", label="AI kept answering after handing over")
def _ai_kept(d: Evidence) -> str:
    n = d.get("ai_replies_after_request")
    allowed = int(d.get("allowed") or 0)
    return (f"The AI kept answering after handing over to a human: "
            f"{_count(n, 'AI reply', 'AI replies')} while the customer waited "
            f"({'none' if not allowed else allowed} allowed).")


@drop_reason_register("whatsapp_window_expired", label="WhatsApp window expired while waiting")
def _window(d: Evidence) -> str:
    hours = d.get("window_hours") or 24
    text = f"WhatsApp's {hours}-hour window closed while the customer waited for a human"
    if d.get("waited_seconds") is not None:
        text += f" ({duration_words(d.get('waited_seconds'))} after the request"
        text += f", the handoff still {state_words(d['state'])})" if d.get("state") else ")"
    return text + ": only a template message can reach the customer now."


@flag_sentence_register(Flag.Kind.HANDOFF_DROPPED)
def _dropped(e: Evidence) -> str:
    details = e.get("details") or {}
    reasons = list(details) or list(e.get("reasons") or []) or [e.get("reason", "")]
    parts = []
    for reason in reasons:
        fn = _DROP_REASONS.get(reason)
        detail = details.get(reason) or {}
        try:
            parts.append(fn(detail) if fn else f"{drop_reason_label(reason)}.")
        except Exception:  # noqa: BLE001
            parts.append(f"{drop_reason_label(reason)}.")
    return " ".join(p for p in parts if p)


@flag_sentence_register(Flag.Kind.HANDOFF_MISSED)
def _missed(e: Evidence) -> str:
    matched = e.get("matched")
    asked = _count(e.get("times_asked") or 1, "time")
    text = "The customer asked for a person"
    text += f" (“{matched}”)" if matched else ""
    text += f" {asked} and no handoff was requested"
    turns = e.get("ai_turns")
    why = str(e.get("why") or "")
    if why.startswith("the AI answered") or (turns and not why):
        text += f": the AI answered {_count(turns, 'time')} instead"
        allowed = e.get("allowed_ai_turns")
        if allowed:
            text += f" (a handoff is expected within {_count(allowed, 'AI reply', 'AI replies')})"
    elif why.startswith("conversation "):
        text += f": the conversation was {why.split(' ', 1)[1].split(' without')[0]} first"
    return text + "."


# --- what the scoring app finds --------------------------------------------------------------

RULE_WORDS = {
    # reasoning_leak
    "reasoning_block": "a block of the AI's internal reasoning",
    "unclosed_tag": "the start of an internal reasoning block",
    "orphaned_close_tag": "the end of an internal reasoning block",
    "template_token": "a prompt-template token",
    "react_line": "the AI's step-by-step planning lines (Thought / Action)",
    "ai_disclaimer": "a sentence about being an AI language model",
    "system_prompt_overlap": "text copied from its system prompt",
    # pii_leak
    "card_number": "a payment card number",
    "iban": "a bank account number (IBAN)",
    "email_address": "an e-mail address that is not the customer's or ours",
    "phone_number": "a phone number that is not the customer's or ours",
    # tone rules (BrandVoice.critical_rules)
    "banned_phrase": "used a banned phrase",
    "required_phrase": "left out a required phrase",
    "brand_spelling": "misspelt the brand name",
    "first_person": "used the wrong first person",
    "greeting": "had no greeting",
    "signoff": "had no sign-off",
    "emoji": "broke the emoji policy",
    "length": "was too long for the channel",
}


def rule_words(rule: str) -> str:
    return RULE_WORDS.get(rule, rule.replace("_", " "))


@flag_sentence_register(Flag.Kind.REASONING_LEAK)
def _reasoning(e: Evidence) -> str:
    rules = [rule_words(r) for r in e.get("rules") or []]
    return ("The AI showed the customer what it should have kept to itself: "
            f"{_listing(rules) or 'internal reasoning'}.")


@flag_sentence_register(Flag.Kind.PII_LEAK)
def _pii(e: Evidence) -> str:
    hits = e.get("hits") or []
    rules = [r for r in e.get("rules") or []]
    counts = {r: sum(1 for h in hits if h.get("rule") == r) for r in rules}
    parts = [rule_words(r) + (f" (×{counts[r]})" if counts.get(r, 0) > 1 else "")
             for r in rules]
    return f"A reply showed personal data: {_listing(parts) or 'personal data'}."


@flag_sentence_register(Flag.Kind.TONE_OFF_BRAND)
def _tone(e: Evidence) -> str:
    score, threshold = e.get("score_100"), e.get("threshold_100")
    brand = e.get("brand") or "the brand"
    parts = []
    if e.get("below_threshold") and score is not None:
        parts.append(f"Brand tone {round(float(score))}/100, under {brand}'s threshold of "
                     f"{round(float(threshold or 0))}")
    critical = [rule_words(r) for r in e.get("critical_broken") or []]
    if critical:
        lead = "The reply " if not parts else "; the reply "
        parts.append(lead + _listing(critical) + " (a must-follow rule)")
    if not parts and score is not None:
        parts.append(f"Brand tone {round(float(score))}/100")
    return "".join(parts) + "."


AUTHOR_WORDS = {"ai": "AI", "human": "agents'", "customer": "customers'", "system": "system"}
CHANNEL_WORDS = {"whatsapp": "WhatsApp", "sms": "SMS", "email": "e-mail", "web": "web chat"}


@flag_sentence_register(Flag.Kind.TONE_DRIFT)
def _drift(e: Evidence) -> str:
    who = AUTHOR_WORDS.get(e.get("author_kind", ""), "")
    channel = CHANNEL_WORDS.get(e.get("channel", ""), e.get("channel", ""))
    recent = e.get("ewma")
    usual = e.get("baseline_mean")
    direction = "fell" if e.get("direction") == "down" else "rose"
    text = f"The brand tone of {who} replies on {channel} {direction}".replace("  ", " ")
    if recent is not None and usual is not None:
        text += (f": lately {round(float(recent) * 100)}/100 against a usual "
                 f"{round(float(usual) * 100)}/100")
    return text + ", beyond its normal day-to-day spread."


@flag_sentence_register(Flag.Kind.SPOOFED_SENDER)
def _spoofed(e: Evidence) -> str:
    checks = []
    for name in ("spf", "dkim", "dmarc"):
        verdict = e.get(name)
        if name in e:
            checks.append(f"{name.upper()} {verdict or 'not given'}")
    text = ("An e-mail claimed to come from our own support address but the mail provider "
            "could not confirm it")
    text += f" ({', '.join(checks)})" if checks else ""
    return text + "; it was kept but not counted as an agent's reply."
