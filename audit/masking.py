"""Masking for viewers without the `view_pii` permission: customer addresses and the PII
inside message bodies (e-mail addresses, phone numbers, card and account numbers) are
shown with most characters hidden, keeping enough to tell two customers apart."""

import re

DOT = "•"
_EMAIL = re.compile(r"(?P<user>[A-Za-z0-9._%+-]+)@(?P<domain>[A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Digit runs long enough to be a phone, card or account number, with the usual separators;
# an IBAN is two letters, two check digits and a long alphanumeric run.
_NUMBER = re.compile(r"(?<![\w])\+?\d[\d \-().]{5,}\d(?![\w])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")


def _keep_tail(text: str, keep: int) -> str:
    """Hide every letter and digit but the last `keep`, leaving separators in place."""
    total = sum(ch.isalnum() for ch in text)
    out, seen = [], 0
    for ch in text:
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > total - keep else DOT)
        else:
            out.append(ch)
    return "".join(out)


def mask_email(address: str) -> str:
    found = _EMAIL.fullmatch(address.strip())
    if not found:
        return _keep_tail(address, 2)
    user = found["user"]
    return f"{user[0]}{DOT * 3}@{found['domain']}"


def mask_address(address: str, channel: str = "") -> str:
    """A customer address as a viewer sees it: phone +44••••••3456, e-mail p•••@host,
    other ids with their last characters only."""
    if not address:
        return address
    if "@" in address:
        return mask_email(address)
    digits = sum(ch.isdigit() for ch in address)
    return _keep_tail(address, 4 if digits >= 7 else 2)


def mask_text(text: str) -> str:
    """PII inside free text (message bodies, evidence excerpts) masked in place."""
    if not text:
        return text
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    text = _IBAN.sub(lambda m: _keep_tail(m.group(0), 4), text)
    return _NUMBER.sub(
        lambda m: _keep_tail(m.group(0), 4) if sum(c.isdigit() for c in m.group(0)) >= 7
        else m.group(0),
        text,
    )
