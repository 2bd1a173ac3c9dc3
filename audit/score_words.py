"""A score's explanation in words ("friendly words: thanks, happy"), per scorer name.

The scorers (scoring/scorers.py) keep their explanations as figures; this is how the pages
say them. An unknown scorer's figures are listed readably, never as a Python repr.
"""

from collections.abc import Callable
from typing import Any

from conversations.flag_text import rule_words

SCORE_LABELS = {
    "formality": "formality", "warmth": "warmth", "readability": "reading level",
    "length": "length", "emoji": "emoji", "greeting_signoff": "greeting and sign-off",
    "phrases": "brand phrases", "brand_tone": "brand tone",
    "exemplar_similarity": "likeness to the brand's example replies",
}

Words = Callable[[dict[str, Any]], str]
_WORDS: dict[str, Words] = {}


def score_label(name: str) -> str:
    return SCORE_LABELS.get(name, name.replace("_", " "))


def _texts(hits: Any, limit: int = 8) -> str:
    seen: list[str] = []
    for h in hits or []:
        text = str(h.get("text", "")) if isinstance(h, dict) else str(h)
        if text and text not in seen:
            seen.append(text)
    shown = ", ".join(seen[:limit])
    return shown + (f" and {len(seen) - limit} more" if len(seen) > limit else "")


def _band(band: Any) -> str:
    try:
        low, high = band
        return f"the brand wants {round(100 * low)}–{round(100 * high)}"
    except (TypeError, ValueError):
        return ""


def _words(name: str) -> Callable[[Words], Words]:
    def add(fn: Words) -> Words:
        _WORDS[name] = fn
        return fn
    return add


@_words("formality")
def _formality(e: dict[str, Any]) -> str:
    parts = [f"{round(100 * float(e.get('level', 0)))}/100 formal ({_band(e.get('band'))})"]
    if e.get("formal"):
        parts.append(f"formal words: {_texts(e['formal'])}")
    if e.get("informal"):
        parts.append(f"casual words: {_texts(e['informal'])}")
    return "; ".join(parts)


@_words("warmth")
def _warmth(e: dict[str, Any]) -> str:
    words = e.get("words") or []
    friendly = [w for w in words if isinstance(w, dict) and w.get("valence", 0) > 0]
    cold = [w for w in words if isinstance(w, dict) and w.get("valence", 0) < 0]
    parts = [f"{round(100 * float(e.get('level', 0)))}/100 warm ({_band(e.get('band'))})"]
    parts.append(f"friendly words: {_texts(friendly)}" if friendly else "no friendly words")
    if cold:
        parts.append(f"negative words: {_texts(cold)}")
    return "; ".join(parts)


@_words("readability")
def _readability(e: dict[str, Any]) -> str:
    return (f"reads at school grade {e.get('grade')} (the brand allows up to "
            f"{e.get('max_grade')}); {e.get('words')} words in {e.get('sentences')} "
            f"sentence{'s' if e.get('sentences') != 1 else ''}")


@_words("length")
def _length(e: dict[str, Any]) -> str:
    text = f"{e.get('chars')} characters"
    if e.get("segments") is not None:
        n = e["segments"]
        text += f", {n} SMS segment{'s' if n != 1 else ''}"
        if e.get("encoding") == "UCS-2":
            shown = _texts(e.get("non_gsm"))
            text += " (special characters" + (f" such as {shown}" if shown else "") + \
                " make every segment shorter)"
    limits = e.get("limits") or {}
    if limits.get("max_segments"):
        text += f"; limit {limits['max_segments']} segments"
    if limits.get("max_chars"):
        text += f"; limit {limits['max_chars']} characters"
    return text


@_words("emoji")
def _emoji(e: dict[str, Any]) -> str:
    count, limit = e.get("count") or 0, e.get("max")
    text = f"{count} emoji" + (f": {_texts(e.get('emoji'))}" if count else "")
    if limit is not None:
        text += f" (up to {limit} allowed on this channel)"
    return text


@_words("greeting_signoff")
def _greeting(e: dict[str, Any]) -> str:
    parts = []
    for check in e.get("checks") or []:
        what = "greeting" if check.get("rule") == "greeting" else "sign-off"
        if check.get("ok"):
            parts.append(f"{what} present")
        else:
            expected = ", ".join(f"“{r}”" for r in (check.get("required") or [])[:3])
            parts.append(f"{what} missing" + (f" (expected {expected})" if expected else ""))
    return "; ".join(parts) or "no greeting or sign-off required on this channel"


@_words("phrases")
def _phrases(e: dict[str, Any]) -> str:
    parts = []
    for v in e.get("violations") or []:
        rule = v.get("rule")
        if rule == "banned_phrase":
            parts.append(f"banned phrase “{v.get('text')}”")
        elif rule == "required_phrase":
            parts.append(f"required phrase “{v.get('text')}” missing")
        elif rule == "brand_spelling":
            parts.append(f"brand written “{v.get('text')}” instead of “{v.get('expected')}”")
        elif rule == "first_person":
            parts.append(f"says {_texts(v.get('words'))} where the brand speaks as "
                         f"“{v.get('expected')}”")
        else:
            parts.append(rule_words(str(rule)))
    return "; ".join(parts) or "no banned phrase, brand name spelt right"


@_words("exemplar_similarity")
def _exemplar(e: dict[str, Any]) -> str:
    return (f"{round(100 * float(e.get('similarity', 0)))}% alike the closest example reply "
            f"(“{str(e.get('exemplar', ''))[:80]}”)")


@_words("brand_tone")
def _tone(e: dict[str, Any]) -> str:
    text = f"{e.get('score_100')}/100 against a threshold of {e.get('threshold_100')}"
    broken = [rule_words(r) for r in e.get("broken") or []]
    if broken:
        text += "; the reply " + ", ".join(broken)
    return text


def _generic(e: dict[str, Any]) -> str:
    parts = []
    for key, value in e.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, float):
            value = round(value, 3)
        elif isinstance(value, list):
            value = _texts(value) or f"{len(value)} items"
        elif isinstance(value, dict):
            value = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in value.items()
                              if not isinstance(v, (dict, list)))
        parts.append(f"{key.replace('_', ' ')} {value}")
    return "; ".join(parts)


def score_words(name: str, explanations: Any) -> str:
    if not isinstance(explanations, dict):
        return str(explanations or "")
    fn = _WORDS.get(name, _generic)
    try:
        return fn(explanations)
    except (TypeError, ValueError, KeyError, AttributeError):
        return _generic(explanations)
