"""Masking for viewers without the `view_pii` permission.

One gate: every page and CSV (the `audit.views.requires` decorator) and every API answer
(`audit.api.views.AuditorAPI.finalize_response`) goes through `response_mask` when the
viewer may not see PII, so whatever text a surface shows (a message body, a tool error, a
bounce message, a document title, a chart label, an error echoing the input) is masked
without the surface having to ask. The personal data found is what the `pii_leak` check
finds (scoring.pii: phonenumbers, Luhn and IBAN checksums from python-stdnum, an RFC 5322 /
6531 e-mail grammar), so masking and detection agree.

Customer addresses are identifiers rather than text (a web visitor id is not a phone
number): the surfaces that show one format it with `mask_address` as well.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from html import escape, unescape
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.http import HttpResponseBase, StreamingHttpResponse

from conversations.conf import auditor_settings
from scoring.pii import EMAIL, pii_spans

DOT = "•"


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
    found = EMAIL.fullmatch(address.strip())
    if not found:
        return _keep_tail(address, 2)
    return f"{found['local'][0]}{DOT * 3}@{found['domain']}"


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
    """The personal data inside free text masked in place: e-mail addresses keep their
    first letter and domain, numbers their last four characters."""
    if not text or not isinstance(text, str):
        return text
    spans = pii_spans(text, auditor_settings.SCORING_PHONE_REGION)
    if not spans:
        return text
    out, at = [], 0
    for span in spans:
        found = text[span.start:span.end]
        out += [text[at:span.start], _mask_span(span.rule, found)]
        at = span.end
    out.append(text[at:])
    return "".join(out)


_EXTENSION = re.compile(r"\s*(?:ext\.?|x)\s*\d+$", re.IGNORECASE)


def _mask_span(rule: str, found: str) -> str:
    if rule == "email_address":
        return mask_email(found)
    extension = _EXTENSION.search(found) if rule == "phone_number" else None
    if extension:  # the number keeps its last four digits, the extension none
        return (_keep_tail(found[:extension.start()], 4)
                + re.sub(r"\d", DOT, extension.group(0)))
    return _keep_tail(found, 4)


def mask_json(value: Any) -> Any:
    """Every string inside a JSON value (keys included) with its PII masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, (list, tuple)):
        return [mask_json(v) for v in value]
    if isinstance(value, dict):
        return {mask_json(k): mask_json(v) for k, v in value.items()}
    return value


_TAG = re.compile(r"(<!--.*?-->|<[^>]*>)", re.DOTALL)
_ATTRIBUTE = re.compile(r"""(\s[\w:.-]+\s*=\s*)("[^"]*"|'[^']*'|[^\s"'>]+)""")
# Attributes that carry the page's structure, not data: left alone so links and forms work.
_STRUCTURAL = {"href", "src", "action", "formaction", "id", "name", "for", "form", "class",
               "style", "type", "method", "rel", "role", "lang", "charset", "http-equiv",
               "integrity", "crossorigin", "enctype", "autocomplete", "list", "target"}


# Link attributes whose query string can carry a filter value taken from the data (an
# agent's name, a queue): masked value by value, the rest of the link left working.
_LINKS = {"href", "src", "action", "formaction"}
# Only a value holding an e-mail or enough digits for a phone or card number can hold PII
# (the check is cheap; pii_spans is not, and a page of figures has thousands of links).
_MAYBE_PII = re.compile(r"@|%40|(?:\d\D*){7}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _mask_link(value: str) -> str:
    quote = value[0] if value[:1] in "\"'" else ""
    url = value[1:-1] if quote else value
    if "?" not in url or not _MAYBE_PII.search(_DAY.sub("", url.split("?", 1)[1])):
        return value
    path, query = url.split("?", 1)
    pairs, changed = [], False
    for key, found in parse_qsl(unescape(query), keep_blank_values=True):
        if _MAYBE_PII.search(found) and not _DAY.fullmatch(found):
            masked = mask_text(found)
            changed |= masked != found
            found = masked
        pairs.append((key, found))
    if not changed:
        return value
    return f"{quote}{path}?{escape(urlencode(pairs))}{quote}"


def _mask_tag(tag: str) -> str:
    def attribute(m: re.Match[str]) -> str:
        name = m.group(1).strip().rstrip("=").strip().lower()
        if name in _LINKS:
            return m.group(1) + _mask_link(m.group(2))
        return m.group(0) if name in _STRUCTURAL else m.group(1) + mask_text(m.group(2))

    return _ATTRIBUTE.sub(attribute, tag)


def mask_html(html: str) -> str:
    """An HTML page with the PII in its text and its data attributes masked."""
    parts = _TAG.split(html)
    for i, part in enumerate(parts):
        if i % 2:
            parts[i] = part if part.startswith("<!--") else _mask_tag(part)
        else:
            parts[i] = mask_text(part)
    return "".join(parts)


def mask_csv_chunks(chunks: Iterable[bytes | str]) -> Iterator[bytes]:
    """A streamed CSV (one whole record per chunk, as the exports write them) masked cell
    by cell."""
    for chunk in chunks:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        out = io.StringIO()
        writer = csv.writer(out)
        for row in csv.reader(io.StringIO(text, newline="")):
            writer.writerow([mask_text(cell) for cell in row])
        yield out.getvalue().encode()


def response_mask(response: HttpResponseBase) -> HttpResponseBase:
    """The gate: `response` as a viewer without view_pii may see it (HTML, JSON, CSV)."""
    kind = response.get("Content-Type", "").split(";")[0].strip().lower()
    if isinstance(response, StreamingHttpResponse):
        if kind == "text/csv":
            response.streaming_content = mask_csv_chunks(response.streaming_content)
        return response
    data = getattr(response, "data", None)
    if data is not None and not getattr(response, "is_rendered", True):
        response.data = mask_json(data)  # a DRF answer, before it is rendered
        return response
    if getattr(response, "is_rendered", True) is False:
        response.add_post_render_callback(response_mask)
        return response
    charset = getattr(response, "charset", None) or "utf-8"
    if kind == "text/html":
        response.content = mask_html(response.content.decode(charset)).encode(charset)
    elif kind == "application/json":
        try:
            value = json.loads(response.content)
        except ValueError:
            return response
        response.content = json.dumps(mask_json(value), ensure_ascii=False).encode(charset)
    elif kind in ("text/plain", "text/csv"):
        text = response.content.decode(charset)
        response.content = (mask_text(text) if kind == "text/plain"
                            else b"".join(mask_csv_chunks([text])).decode()).encode(charset)
    return response
