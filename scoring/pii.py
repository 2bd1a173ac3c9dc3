"""Where personal data sits in a text: e-mail addresses, phone numbers, card numbers, IBANs.

One set of detectors for the two uses that must agree: the `pii_leak` check
(scoring.checks) reports what it finds, and the audit pages mask the same spans for viewers
without `view_pii` (audit.masking). Phone numbers are phonenumbers' matcher, cards are Luhn
(python-stdnum), IBANs are stdnum's checksum, and e-mail addresses follow RFC 5322's
dot-atom with RFC 6531's UTF-8 (non-ASCII local parts, internationalized domains).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")

# RFC 5322 atext, widened by RFC 6531 to any non-ASCII letter or digit.
_ATEXT = r"[^\W_]|[!#$%&'*+/=?^_`{|}~-]"
# A domain label (IDN labels in Unicode or punycode), and a TLD of letters or punycode.
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_TLD = r"(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
EMAIL = re.compile(
    rf"(?P<local>(?:{_ATEXT})+(?:\.(?:{_ATEXT})+)*)@(?P<domain>(?:{_LABEL}\.)+{_TLD})(?![\w-])",
)
# A number glued to its extension ("4155550199ext12"): phonenumbers' matcher refuses a
# number touching a letter, so "ext" is read as " x " (same length, spans stay true).
_GLUED_EXT = re.compile(r"(?<=\d)ext(?=[.\s]*\d|[^\w]|$)", re.IGNORECASE)
_EXTENSION_TAIL = re.compile(r"\s*(?:ext\.?|x)\s*\d{1,7}", re.IGNORECASE)


@dataclass(frozen=True)
class PiiSpan:
    rule: str  # email_address, phone_number, card_number, iban
    start: int
    end: int
    value: str  # the normalized value: digits, IBAN, e-mail, or the number in E.164


def pii_spans(text: str, region: str = "US") -> list[PiiSpan]:
    """Every piece of personal data in `text`, in order; spans do not overlap."""
    if not text:
        return []
    spans: list[PiiSpan] = []
    # Cards, IBANs and phone numbers all hold at least 7 digits: most texts hold fewer, and
    # skip the number matchers (phonenumbers' is the costliest part).
    numbers = sum(ch.isdigit() for ch in text) >= 7
    if numbers:
        for m in CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
                spans.append(PiiSpan("card_number", m.start(), m.end(), digits))
        for m in IBAN.finditer(text):
            if stdnum_iban.is_valid(m.group(0)):
                spans.append(PiiSpan("iban", m.start(), m.end(), m.group(0)))
    if "@" in text:
        for m in EMAIL.finditer(text):
            if not _overlaps(spans, m.start(), m.end()):
                spans.append(PiiSpan("email_address", m.start(), m.end(), m.group(0)))
    if numbers:
        scan = _GLUED_EXT.sub(" x ", text)
        for match in phonenumbers.PhoneNumberMatcher(scan, region):
            end = match.end
            tail = _EXTENSION_TAIL.match(text, end) if "ext" not in match.raw_string else None
            if tail and not match.number.extension:
                end = tail.end()  # the extension belongs to the number
            if _overlaps(spans, match.start, end):
                continue  # the digits of a card number, IBAN or e-mail, already reported
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            spans.append(PiiSpan("phone_number", match.start, end, e164))
        spans += _loose_numbers(text, region, spans)
    spans.sort(key=lambda s: s.start)
    return spans


# phonenumbers' matcher gives up on a number that more digits follow ("+1 415 555 0152 550
# 5.1.1", a bounce): such runs are tried window by window of their words.
_RUN = re.compile(r"\+?[\d(][\d\s().+-]{5,}\d")
_DATE = re.compile(r"\d{4}-\d\d-\d\d|\d\d?\.\d\d?\.\d{4}")


def _loose_numbers(text: str, region: str, taken: list[PiiSpan]) -> list[PiiSpan]:
    found: list[PiiSpan] = []
    for run in _RUN.finditer(text):
        if sum(ch.isdigit() for ch in run.group(0)) < 7 or _DATE.search(run.group(0)):
            continue
        words = [(m.start() + run.start(), m.end() + run.start())
                 for m in re.finditer(r"\S+", run.group(0))]
        i = 0
        while i < len(words):
            best = None
            for j in range(i, min(len(words), i + 6)):
                start, end = words[i][0], words[j][1]
                candidate = text[start:end]
                if not 7 <= sum(ch.isdigit() for ch in candidate) <= 17:
                    continue
                try:
                    number = phonenumbers.parse(candidate, region)
                except phonenumbers.NumberParseException:
                    continue
                if phonenumbers.is_valid_number(number):
                    best = (j, PiiSpan("phone_number", start, end, phonenumbers.format_number(
                        number, phonenumbers.PhoneNumberFormat.E164)))
            if best and not _overlaps(taken + found, best[1].start, best[1].end):
                found.append(best[1])
                i = best[0] + 1
            else:
                i += 1
    return found


def _overlaps(spans: list[PiiSpan], start: int, end: int) -> bool:
    return any(s.start < end and start < s.end for s in spans)
