"""Template filters for the audit pages: masking per role and friendly durations."""

import json
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join

from audit.masking import mask_address, mask_text

register = template.Library()


@register.filter
def customer(address: str, can_see_pii: bool) -> str:
    """A customer address, masked unless the viewer may see PII."""
    return address if can_see_pii else mask_address(address or "")


@register.filter
def pii(text: str, can_see_pii: bool) -> str:
    """Free text with PII masked unless the viewer may see it."""
    return text if can_see_pii else mask_text(text or "")


@register.filter
def duration(seconds: Any) -> str:
    """1h 05m / 7m 30s / 42s."""
    if seconds is None or seconds == "":
        return "—"
    total = int(round(float(seconds)))
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


@register.filter
def percent_of(part: Any, whole: Any) -> int:
    """How full a bar is, 0-100."""
    try:
        return max(0, min(100, round(100 * float(part) / float(whole))))
    except (TypeError, ValueError, ZeroDivisionError):
        return 0


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


@register.simple_tag
def flag_sentence(flag: Any) -> str:
    """The answer-quality flag's sentence from its evidence ("" for other kinds)."""
    from conversations.quality.sentences import FLAG_SENTENCES

    build = FLAG_SENTENCES.get(flag.kind)
    try:
        return build(flag.evidence or {}) if build else ""
    except (KeyError, TypeError, ValueError, IndexError):
        return ""


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
