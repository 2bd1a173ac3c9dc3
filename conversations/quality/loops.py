"""ai_loop: the AI repeating a near-identical reply, or re-asking a question the customer
has answered since."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from .context import Finding, Rules, Span, Turn
from .text import content_stems, facts, fold, sentences, stem

# Closings said at the end of many replies are not a loop.
# Matched on accent-folded text. English, Spanish, French, Portuguese.
_BOILERPLATE = re.compile(
    r"(anything else|let me know|happy to help|you'?re welcome|have a (great|nice|good)|"
    r"thank|algo mas|con gusto|de nada|gracias|que tengas|autre chose|avec plaisir|"
    r"je vous en prie|bonne (journee|soiree)|merci|mais alguma|outra coisa|de nada|obrigad|"
    r"com todo o gosto|com prazer|bom dia|boa (tarde|noite))")
_MIN_WORDS = 5
_QUESTION_OVERLAP = 0.8
# The words of asking, not of what is asked: "What is the booking reference?" and "Can
# you tell me your booking reference?" ask one thing.
_ASKING = frozenset(stem(w) for w in """
what which whose tell share give provide confirm send let exactly again please kindly
cual cuales dices dime decir indicas indica indicar confirmas confirmar puedes podrias
exactamente nuevo envias
quel quelle quels quelles pouvez pourriez donner indiquer confirmer preciser dire
qual quais pode podes poderia dizer diz informar indicar confirmar envia
""".split())
# A customer message that asks the AI to wait has not answered its question.
_WAIT = re.compile(
    r"^\W*(\w+\W+){0,3}(give me a (moment|minute|sec(ond)?)|hang on|hold on|one (sec|moment|"
    r"minute)|just a (sec|moment|minute)|wait|let me (check|find|look|get)|i'?ll (need to )?"
    r"(check|find|look)|un momento|espera|dejame (ver|mirar|buscar)|voy a (mirar|buscar)|"
    r"un (instant|moment)|attendez|attends|je (cherche|regarde|verifie)|um momento|espera|"
    r"deixa[- ]me (ver|procurar)|vou (ver|procurar))")


def only_asks_to_wait(text: str) -> bool:
    """True for "give me a moment", "un momento que lo miro": written, not an answer."""
    return len(text) < 120 and bool(_WAIT.search(fold(text)))


def _normal(text: str) -> str:
    """The text without its closings (thanks, anything else...), as lower-case words."""
    kept = " ".join(t for _, _, t in sentences(text) if not _BOILERPLATE.search(fold(t)))
    return " ".join(re.findall(r"\w+", fold(kept)))


def _values(text: str) -> set[str]:
    return {str(f["value"]) for f in facts(text)}


def _questions(text: str) -> list[tuple[int, int, str, set[str]]]:
    out = []
    for s, e, t in sentences(text):
        stems = content_stems(t) - _ASKING
        if t.rstrip().endswith("?") and not _BOILERPLATE.search(fold(t)) and len(stems) >= 2:
            out.append((s, e, t, stems))
    return out


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
