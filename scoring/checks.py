"""Checks for what must never reach a customer: leaked reasoning and leaked personal data.

Pure functions over a message's text and its context; scoring.services turns a finding into
a flag (conversations.services.flag_raise) with the evidence returned here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from conversations.models import Flag

from .pii import pii_spans


@dataclass(frozen=True)
class CheckInput:
    text: str
    channel: str
    # The customer's own addresses (phone in E.164 or e-mail, lower-cased).
    customer_addresses: frozenset[str] = frozenset()
    # Addresses the business may give out: its own numbers and mailboxes, allowed contacts.
    business_addresses: frozenset[str] = frozenset()
    # The last customer message before this one (did the customer ask for code?).
    customer_prompt: str = ""
    # The system prompt of the AI step that produced the message, when reported.
    system_prompt: str = ""
    phone_region: str = "US"


@dataclass
class Finding:
    kind: str
    severity: str
    evidence: dict[str, Any] = field(default_factory=dict)


def _span(m: re.Match[str], group: int | str = 0) -> dict[str, Any]:
    return {"text": m.group(group)[:200], "span": [m.start(group), m.end(group)]}


# --- reasoning_leak ----------------------------------------------------------------------

_REASONING_TAG = re.compile(
    r"<(/?)\s*(think|thinking|thought|reasoning|reflection|scratchpad|inner_monologue)\s*>",
    re.IGNORECASE,
)
_TEMPLATE_TOKEN = re.compile(
    r"<\|(?:im_start|im_end|im_sep|endoftext|eot_id|start_header_id|end_header_id|"
    r"begin_of_text|system|user|assistant|end|eom_id)\|>"
    # Llama's <s>/</s> are left out: they are HTML strikethrough too ("<s>$40</s> $30").
    r"|\[/?INST\]|<<\/?SYS>>|<start_of_turn>|<end_of_turn>",
)
_REACT_LINE = re.compile(
    r"^[ \t]*(Thought|Action|Action Input|Observation|Final Answer)[ \t]*:", re.MULTILINE
)
_AI_DISCLAIMER = re.compile(
    r"\bas an AI(?: language)? model\b|\bas a (?:large )?language model\b"
    r"|\bmy (?:system prompt|instructions from the developer)\b",
    re.IGNORECASE,
)
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)
_ASKED_FOR_CODE = re.compile(
    r"\b(?:code|snippet|example|sample|html|xml|markup|template|regex|script|json|tag)s?\b"
    r"|<\w+>|`",
    re.IGNORECASE,
)
_SHINGLE = 8


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _prompt_overlap(text: str, system_prompt: str) -> dict[str, Any] | None:
    """Runs of at least 8 consecutive words of the system prompt found in the message."""
    prompt_words = _words(system_prompt)
    if len(prompt_words) < _SHINGLE:
        return None
    shingles = {
        tuple(prompt_words[i:i + _SHINGLE]) for i in range(len(prompt_words) - _SHINGLE + 1)
    }
    words = _words(text)
    matched = [
        i for i in range(len(words) - _SHINGLE + 1)
        if tuple(words[i:i + _SHINGLE]) in shingles
    ]
    if not matched:
        return None
    covered = set()
    for i in matched:
        covered.update(range(i, i + _SHINGLE))
    first = matched[0]
    return {
        "rule": "system_prompt_overlap",
        "shingle_words": _SHINGLE,
        "overlapping_words": len(covered),
        "message_words": len(words),
        "share_of_message": round(len(covered) / max(1, len(words)), 4),
        "example": " ".join(words[first:first + _SHINGLE * 2]),
    }


def reasoning_leak_check(item: CheckInput) -> Finding | None:
    text = item.text
    hits: list[dict[str, Any]] = []
    excluded: list[list[int]] = []
    scan = text
    if _ASKED_FOR_CODE.search(item.customer_prompt or ""):
        # Tags inside a code sample the customer asked for are the answer, not a leak:
        # blank the code out (same length, so spans stay true) before looking for tags.
        def blank(m: re.Match[str]) -> str:
            excluded.append([m.start(), m.end()])
            return " " * (m.end() - m.start())

        scan = _CODE_BLOCK.sub(blank, text)

    opened: list[re.Match[str]] = []
    for m in _REASONING_TAG.finditer(scan):
        if m.group(1):  # closing tag
            if opened:
                start = opened.pop()
                hits.append({"rule": "reasoning_block", "text": text[start.start():m.end()][:300],
                             "span": [start.start(), m.end()]})
            else:
                hits.append(dict(_span(m), rule="orphaned_close_tag"))
        else:
            opened.append(m)
    for m in opened:
        hits.append({"rule": "unclosed_tag", "text": text[m.start():m.start() + 300],
                     "span": [m.start(), len(text)]})
    hits += [dict(_span(m), rule="template_token") for m in _TEMPLATE_TOKEN.finditer(scan)]
    react = list(_REACT_LINE.finditer(scan))
    labels = {m.group(1) for m in react}
    # "Thought:" alone is telling; "Action:" needs a partner so "Action: reply YES" passes.
    if "Thought" in labels or len(labels & {"Action", "Action Input", "Observation"}) >= 2:
        hits += [dict(_span(m), rule="react_line") for m in react]
    hits += [dict(_span(m), rule="ai_disclaimer") for m in _AI_DISCLAIMER.finditer(scan)]
    overlap = _prompt_overlap(scan, item.system_prompt) if item.system_prompt else None
    if overlap:
        hits.append(overlap)
    if not hits:
        return None
    rules = sorted({h["rule"] for h in hits})
    severe = {"reasoning_block", "unclosed_tag", "system_prompt_overlap", "react_line"}
    return Finding(Flag.Kind.REASONING_LEAK, "high" if severe & set(rules) else "medium", {
        "rules": rules, "hits": hits[:20], "excluded_code_spans": excluded,
    })


# --- pii_leak ----------------------------------------------------------------------------

def _mask(value: str, keep: int = 4) -> str:
    visible = re.sub(r"\W", "", value)
    return "*" * max(0, len(visible) - keep) + visible[-keep:]


def normalize_address(address: str, region: str = "US") -> str:
    """E.164 for phone numbers (a `whatsapp:` prefix dropped), lower case for the rest."""
    address = address.strip()
    if address.lower().startswith("whatsapp:"):
        address = address[len("whatsapp:"):]
    if "@" in address:
        return address.lower()
    try:
        number = phonenumbers.parse(address, region)
    except phonenumbers.NumberParseException:
        return address.lower()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def pii_leak_check(item: CheckInput) -> Finding | None:
    own = item.customer_addresses | item.business_addresses
    hits: list[dict[str, Any]] = []
    # The detectors are shared with the pages' masking (scoring.pii), so what is flagged
    # here is what a viewer without view_pii sees masked.
    for span in pii_spans(item.text, item.phone_region):
        where = [span.start, span.end]
        if span.rule == "card_number":
            hits.append({"rule": "card_number", "masked": _mask(span.value), "span": where,
                         "luhn": True})
        elif span.rule == "iban":
            hits.append({"rule": "iban", "masked": _mask(span.value),
                         "country": span.value[:2], "span": where})
        elif span.rule == "email_address":
            if span.value.lower().rstrip(".") not in own:
                hits.append({"rule": "email_address", "masked": _mask(span.value, 8),
                             "span": where})
        elif span.value not in own:
            hits.append({"rule": "phone_number", "masked": _mask(span.value), "span": where})
    if not hits:
        return None
    rules = sorted({h["rule"] for h in hits})
    severity = "high" if {"card_number", "iban"} & set(rules) else "medium"
    return Finding(Flag.Kind.PII_LEAK, severity, {"rules": rules, "hits": hits[:20]})
