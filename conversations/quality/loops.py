"""ai_loop: the AI repeating a near-identical reply, or re-asking a question the customer
has answered since."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from .context import Finding, Rules, Span, Turn
from .text import content_stems, facts, fold, sentences

# Closings said at the end of many replies are not a loop.
_BOILERPLATE = re.compile(
    r"(anything else|let me know|happy to help|you'?re welcome|have a (great|nice|good)|"
    r"thank|algo m[aá]s|con gusto|de nada|gracias|que tengas)", re.I)
_MIN_WORDS = 5
_QUESTION_OVERLAP = 0.8


def _normal(text: str) -> str:
    """The text without its closings (thanks, anything else...), as lower-case words."""
    kept = " ".join(t for _, _, t in sentences(text) if not _BOILERPLATE.search(t))
    return " ".join(re.findall(r"\w+", fold(kept)))


def _values(text: str) -> set[str]:
    return {str(f["value"]) for f in facts(text)}


def _questions(text: str) -> list[tuple[int, int, str, set[str]]]:
    return [(s, e, t, content_stems(t)) for s, e, t in sentences(text)
            if t.rstrip().endswith("?") and not _BOILERPLATE.search(t)
            and len(content_stems(t)) >= 2]


def ai_loop(turn: Turn, rules: Rules) -> Finding | None:
    text = turn.reply.text
    normal = _normal(text)
    if not turn.earlier_replies:
        return None
    repeats: list[dict[str, object]] = []
    spans: list[Span] = []
    if len(normal.split()) >= _MIN_WORDS:
        mine = _values(text)
        for earlier, _answered in turn.earlier_replies:
            ratio = SequenceMatcher(None, normal, _normal(earlier.text), autojunk=False).ratio()
            # The same template about other facts (another order, another date) is not a loop.
            if ratio >= rules.loop_similarity and _values(earlier.text) == mine:
                repeats.append({"message": earlier.ref, "similarity": round(ratio, 3),
                                "rule": "near_identical"})
        if repeats:
            spans.append({"start": 0, "end": len(text), "text": text[:300],
                          "why": f"near-identical to {len(repeats)} earlier AI "
                                 f"repl{'y' if len(repeats) == 1 else 'ies'}"})
    if not repeats:
        for start, end, question, stems in _questions(text):
            for earlier, answered in turn.earlier_replies:
                if not answered:  # asking again after silence is a reminder, not a loop
                    continue
                for _, _, q, other in _questions(earlier.text):
                    # Overlap coefficient: "What is your order number?" and "Could you
                    # tell me your order number?" are one question.
                    overlap = len(stems & other) / max(min(len(stems), len(other)), 1)
                    if overlap >= _QUESTION_OVERLAP:
                        repeats.append({"message": earlier.ref, "similarity": round(overlap, 3),
                                        "rule": "question_reasked", "question": q[:300]})
                        spans.append({"start": start, "end": end, "text": question,
                                      "why": "asks again what the customer already answered"})
                        break
                if repeats:
                    break
            if repeats:
                break
    if not repeats:
        return None
    return Finding("ai_loop", "high" if len(repeats) >= 2 else "medium", {
        "message_spans": spans, "repeats": repeats,
        "similarity_min": rules.loop_similarity})
