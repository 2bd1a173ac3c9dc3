"""Template filters for the audit pages: masking per role and friendly durations."""

import json
from datetime import timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from alerts.selectors import alerts_needing_attention
from audit.labels import (
    delivery_label,
    requester_label,
    state_label,
    trigger_label,
    wait_label,
)
from audit.masking import mask_address, mask_text
from audit.score_words import score_label, score_words
from conversations.flag_text import duration_words, flag_kind_label, moment_words
from conversations.flag_text import flag_summary as _flag_summary
from handoffs.flags import AUTO

register = template.Library()


@register.simple_tag
def alerts_attention() -> int:
    """The header's count: alerts firing that no one has acknowledged, muted or snoozed."""
    return alerts_needing_attention().count()


@register.filter
def customer(address: str, can_see_pii: bool) -> str:
    """A customer address, masked unless the viewer may see PII."""
    return address if can_see_pii else mask_address(address or "")


@register.filter
def customer_name(conversation: Any, can_see_pii: bool) -> str:
    """The customer's name where one is known and the viewer may see it ("" otherwise: the
    page shows the address, masked for viewers)."""
    person = getattr(conversation, "customer", None) if can_see_pii else None
    name = (person.display_name if person else "").strip()
    return "" if name.lower() in ("", "customer") else name


@register.filter
def pii(text: str, can_see_pii: bool) -> str:
    """Free text with PII masked unless the viewer may see it."""
    return text if can_see_pii else mask_text(text or "")


@register.filter
def in_words(span: timedelta) -> str:
    """A timedelta as people say it: "15 minutes", "1 hour, 30 minutes"."""
    now = timezone.now()
    return timesince(now - span, now)


@register.filter
def duration(seconds: Any) -> str:
    """2 h 14 min / 7 min 30 s / 42 s (the same words as the flag sentences)."""
    if seconds is None or seconds == "":
        return "—"
    total = int(round(float(seconds)))
    if abs(total) >= 3600:
        return ("-" if total < 0 else "") + duration_words(total)
    total = int(round(float(seconds)))
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    if minutes:
        return f"{sign}{minutes} min" + (f" {secs} s" if secs else "")
    return f"{sign}{secs} s"


@register.filter
def percent_of(part: Any, whole: Any) -> int:
    """How full a bar is, 0-100."""
    try:
        return max(0, min(100, round(100 * float(part) / float(whole))))
    except (TypeError, ValueError, ZeroDivisionError):
        return 0


@register.filter
def agreement_words(value: float | None) -> str:
    """A kappa or alpha in words, on the page's own scale: above 0.8 good, under 0.67 the
    category's wording or training needs work."""
    if value is None:
        return ""
    return "good" if value >= 0.8 else ("fair" if value >= 0.667 else "needs work")


@register.filter
def pretty_body(body: str) -> str:
    """A raw event's body for reading: JSON indented, anything else (a form) as it came."""
    try:
        return pretty(json.loads(body))
    except (TypeError, ValueError):
        return body


@register.filter
def pretty(value: Any) -> str:
    """JSON for people: indented, unicode kept."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def explain(explanations: Any) -> str:
    """A score's explanation figures on one line: `level 0.62; band [0.45, 0.85]; ...`."""
    if not isinstance(explanations, dict):
        return str(explanations or "")
    parts = []
    for key, value in explanations.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, float):
            value = round(value, 3)
        parts.append(f"{key.replace('_', ' ')} {value}")
    return "; ".join(parts)


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """mapping[key] in a template (None when missing or not a mapping)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.simple_tag
def qa_note_box(qa: dict[str, Any], message_id: int) -> str:
    """The reviewer's note box on one replay message (label and comment, bound to the review
    form). Built here rather than in the template: the replay shows it on every message, and
    at 200 messages the template's lookups and filters cost more than the rest of the entry."""
    note = qa["form"]["notes"].get(message_id) or {}
    errors = qa["note_errors"].get(message_id) or []
    label = note.get("label") or ""
    return format_html(
        '<details class="note-box"{}><summary>QA note{}</summary>\n'
        '          <input type="text" form="review-form" name="note-label-{}" value="{}" '
        'maxlength="64" placeholder="Label (e.g. wrong answer, too formal)" '
        'aria-label="Label for this message" list="qa-labels">\n'
        '          <textarea form="review-form" name="note-comment-{}" rows="2" '
        'placeholder="Comment on this message" aria-label="Comment on this message">{}'
        '</textarea>\n          {}</details>',
        " open" if note or errors else "",
        format_html(": <strong>{}</strong>", label) if label else "",
        message_id, label, message_id, note.get("comment") or "",
        format_html_join("", '<p class="field-error">{}</p>', ((e,) for e in errors)),
    )


# --- words for internal names (audit.labels, conversations.flag_text) -----------------------


@register.filter
def flag_summary(flag: Any) -> str:
    """The sentence that explains a flag from its evidence."""
    return _flag_summary(flag)


@register.filter
def kind_label(kind: str) -> str:
    return flag_kind_label(kind)


@register.filter
def requester_words(who: str) -> str:
    return requester_label(who)


@register.filter
def state_words(state: str) -> str:
    return state_label(state)


@register.filter
def wait_words(kind: str) -> str:
    return wait_label(kind)


@register.filter
def trigger_words(trigger: str) -> str:
    return trigger_label(trigger)


@register.filter
def delivery(message: Any, channel: str) -> str:
    return delivery_label(getattr(message, "status", ""), channel)


@register.filter
def words(value: Any) -> str:
    """An internal name made readable: `first_person` -> `first person`."""
    return str(value or "").replace("_", " ")


@register.filter
def score_explained(score: Any) -> str:
    """A Score's explanations in words."""
    return score_words(score.name, score.explanations)


@register.filter
def score_name(name: str) -> str:
    return score_label(name)


@register.filter
def plain(value: Any) -> str:
    """A value from stored JSON in words: lists joined, mappings as `key value` pairs."""
    if isinstance(value, dict):
        return "; ".join(f"{str(k).replace('_', ' ')} {plain(v)}" for k, v in value.items()
                         if v not in (None, "", [], {}))
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


@register.filter
def event_words(event_type: str) -> str:
    """`handoff.requested` -> `handoff requested`."""
    return str(event_type or "").replace(".", " ").replace("_", " ")


@register.filter
def found_at(iso: Any) -> str:
    """An ISO moment from evidence, for people (site time zone)."""
    return moment_words(iso)


@register.filter
def who(username: str) -> str:
    """Who changed a flag: a person's name, or "automatically" for the auditor itself."""
    return "automatically" if username == AUTO else f"by {username}"


@register.filter
def actor_words(kind: str) -> str:
    return {"ai": "the AI", "human": "an agent", "customer": "the customer",
            "system": "the system"}.get(kind, words(kind))
def _subject_text(flag: Any, replay: Any) -> str:
    if flag.subject_type != "message":
        return ""
    for item in getattr(replay, "items", ()):
        if item.kind == "message" and item.obj.pk == flag.subject_id:
            m = item.obj
            return "" if m.purged_at else (m.body_new or m.body or "")
    return ""


@register.simple_tag
def flag_spans(flag: Any, replay: Any) -> list[dict[str, Any]]:
    """Each evidence span of an answer-quality flag, cut out of the subject message with a
    little context either side, for the replay to highlight (what the checks read:
    the new part of an e-mail reply, else the body)."""
    text = _subject_text(flag, replay)
    out = []
    for s in (flag.evidence or {}).get("message_spans") or []:
        start, end = s.get("start"), s.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end
                <= len(text)):
            continue
        lo, hi = max(0, start - 60), min(len(text), end + 60)
        out.append({"before": ("…" if lo else "") + text[lo:start], "text": text[start:end],
                    "after": text[end:hi] + ("…" if hi < len(text) else ""),
                    "why": s.get("why", "")})
    return out


@register.simple_tag
def chunk_marked(flag: Any, chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """A retrieved chunk's text in parts, the words an unsupported sentence shares with it
    marked (what little support there was)."""
    text = str(chunk.get("text") or "")
    spans = sorted({(s["start"], s["end"])
                    for u in (flag.evidence or {}).get("unsupported_sentences") or []
                    if u.get("best_source") == chunk.get("id")
                    for s in u.get("chunk_spans") or []
                    if 0 <= s["start"] < s["end"] <= len(text)})
    parts, at = [], 0
    for start, end in spans:
        if start < at:
            continue
        parts += [{"text": text[at:start], "mark": False}, {"text": text[start:end], "mark": True}]
        at = end
    parts.append({"text": text[at:], "mark": False})
    return [p for p in parts if p["text"]]
