"""Brand-tone scorers: small classes with a name and a version, each returning a value 0-1
and the explanations behind it (which rule, which words, which character spans).

Everything here runs from installed wheels alone (regular expressions). The learned
dimensions are in scoring.tone, reading level in scoring.readability, the set and the
overall score in scoring.scorer_set; exemplar similarity is optional (scoring.embeddings,
the `embeddings` extra).

`value` is what is stored in the Score row. For formality and warmth it is the measured
level (so channels can be compared); for the rule dimensions it is the fit to the brand
(1 = on brand). `fit` is always the fit to the brand, and is what the overall score uses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from . import tone_phrases
from .models import BrandVoice
from .phrases import phrase_pattern as _phrase_pattern


@dataclass(frozen=True)
class ScoringInput:
    text: str
    channel: str
    author_kind: str
    brand: BrandVoice
    # ISO 639-1 code from scoring.language ("und" when undetermined); scorers that know
    # only some languages declare `languages` and are not run on the others.
    language: str = "en"


@dataclass
class Result:
    name: str
    value: float
    fit: float
    explanations: dict[str, Any] = field(default_factory=dict)
    # Rules broken (ids as in BrandVoice.critical_rules), for tone_off_brand.
    broken: list[str] = field(default_factory=list)


class Scorer(Protocol):
    name: str
    version: int

    def score_batch(self, items: Sequence[ScoringInput]) -> Sequence[Result | None]:
        """One result per item, None where the dimension does not apply."""
        ...


def author_of(scorer: Scorer) -> str:
    return f"{scorer.name}@{scorer.version}"


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def _band_fit(level: float, low: float, high: float) -> float:
    """1 inside the band, falling linearly to 0 at 0.5 outside it."""
    if low <= level <= high:
        return 1.0
    distance = low - level if level < low else level - high
    return _clamp(1.0 - 2.0 * distance)


def _hits(pattern: re.Pattern[str] | None, text: str) -> list[dict[str, Any]]:
    if pattern is None:
        return []
    return [{"text": m.group(0), "span": [m.start(), m.end()]} for m in pattern.finditer(text)]


class _PerItem:
    """Scorers that look at one message at a time."""

    name = ""
    version = 1

    def score_batch(self, items: Sequence[ScoringInput]) -> list[Result]:
        return [self.score(item) for item in items]

    def score(self, item: ScoringInput) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError


# --- formality ---------------------------------------------------------------------------

_CONTRACTION = re.compile(
    r"\b\w+(?:n't|'re|'ll|'ve|'d|'m)\b|\b(?:it|that|there|what|he|she|let)'s\b", re.IGNORECASE
)
_INFORMAL_WORDS = _phrase_pattern([
    "hey", "hiya", "yo", "yeah", "yep", "yup", "nope", "gonna", "wanna", "gotta", "kinda",
    "sorta", "lol", "lmao", "omg", "btw", "fyi", "thx", "ty", "pls", "plz", "u", "ur", "cuz",
    "awesome", "cool", "super", "totally", "no worries", "no prob", "np", "k", "ok", "okay",
    "guys", "folks", "stuff", "heaps", "ya", "dude", "haha", "hehe", "oops", "whoops", "asap",
    "gotcha", "sure thing", "cheers",
])
_FORMAL_WORDS = _phrase_pattern([
    "please", "kindly", "regarding", "sincerely", "regards", "dear", "assist", "assistance",
    "apologise", "apologize", "apologies", "however", "therefore", "furthermore",
    "accordingly", "we would", "would you", "could you", "thank you", "we appreciate",
    "at your convenience", "do not hesitate", "please note", "unfortunately", "ensure",
    "require", "request", "inform", "provide", "further", "additional", "currently",
])
_SHOUTING = re.compile(r"!{2,}|\?{2,}|\b[A-Z]{4,}\b")
_EMOTICON = re.compile(r"(?:^|\s)(?::-?[)(DPp]|;-?\)|<3|xD|:\/)(?=\s|$)")


# Heylighen & Dewaele's F-score, without a tagger: articles and prepositions mark formal,
# context-free prose; pronouns, demonstratives and interjections mark contextual, informal
# speech. Second person and "we" are left out: support replies address the customer in
# every register.
_NONDEICTIC = frozenset(
    "a an the of in on at by for with from to into onto about above across after against "
    "along among around before behind below beneath beside between beyond during except "
    "inside near off over per since through throughout toward towards under until upon "
    "within without".split()
)
_DEICTIC = frozenset(
    "i me my mine myself he him his she her hers it its they them their theirs this that "
    "these those oh wow hey ugh yay ah lol omg haha yeah yep nope ok okay hmm wtf".split()
)
_LOWER_WORD = re.compile(r"[a-z']+")


class Formality(_PerItem):
    """Formal vs informal register, 0-1: the mean of two parts.

    markers: (formal + 1) / (formal + informal + 2) over marker words, contractions,
    shouting, emoticons and emoji (0.5 with none found);
    density: 0.5 + 1.5 x (articles and prepositions - pronouns and interjections) / words,
    clamped, an F-score-like measure of how context-free the wording is."""

    name = "formality"
    version = 4  # 4: Spanish, Portuguese, French, German (markers only); 3: emoji v2
    languages = frozenset({"en"}) | frozenset(tone_phrases.FORMAL)

    def score(self, item: ScoringInput) -> Result:
        text = item.text
        english = item.language == "en"
        informal_words = _INFORMAL_WORDS if english else tone_phrases.INFORMAL[item.language]
        formal_words = _FORMAL_WORDS if english else tone_phrases.FORMAL[item.language]
        informal = (
            [dict(h, rule="informal_word") for h in _hits(informal_words, text)]
            + [dict(h, rule="contraction") for h in _hits(_CONTRACTION if english else None,
                                                          text)]
            + [dict(h, rule="shouting") for h in _hits(_SHOUTING, text)]
            + [dict(h, rule="emoticon") for h in _hits(_EMOTICON, text)]
            + [dict(h, rule="emoji") for h in emoji_hits(text)]
        )
        formal = [dict(h, rule="formal_word") for h in _hits(formal_words, text)]
        markers = (len(formal) + 1) / (len(formal) + len(informal) + 2)
        words = _LOWER_WORD.findall(text.lower()) if english else []
        nondeictic = sum(w in _NONDEICTIC for w in words)
        deictic = sum(w in _DEICTIC for w in words)
        density = _clamp(0.5 + 1.5 * (nondeictic - deictic) / len(words)) if words else 0.5
        # Density needs each language's function words; outside English, markers alone.
        level = (markers + density) / 2 if english else markers
        brand = item.brand
        fit = _band_fit(level, brand.formality_min, brand.formality_max)
        return Result(self.name, level, fit, {
            "level": round(level, 4),
            "markers": round(markers, 4),
            "density": round(density, 4),
            "articles_prepositions": nondeictic,
            "pronouns_interjections": deictic,
            "band": [brand.formality_min, brand.formality_max],
            "fit": round(fit, 4),
            "formal": formal,
            "informal": informal,
        })


# --- length (SMS segments) ---------------------------------------------------------------

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def sms_segments(text: str) -> dict[str, Any]:
    """How many SMS segments a text takes: GSM-7 (160 a message, 153 a segment when split;
    extension characters count twice) unless any character is outside GSM-7, in which case
    the whole message is UCS-2 (70, or 67 a segment; characters beyond the BMP, like most
    emoji, take two UTF-16 units)."""
    non_gsm = [
        {"text": ch, "span": [i, i + 1]}
        for i, ch in enumerate(text)
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION
    ]
    if not non_gsm:
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    segments = 0 if units == 0 else 1 if units <= single else math.ceil(units / multi)
    return {"encoding": encoding, "units": units, "segments": segments,
            "non_gsm": non_gsm[:10]}


class LengthFit(_PerItem):
    """Length against the channel's limit: SMS in segments, other channels in characters.
    Fit 1 within the limit, else limit / actual."""

    name = "length"
    version = 1

    def score(self, item: ScoringInput) -> Result:
        limits = (item.brand.length_limits or {}).get(item.channel) or {}
        expl: dict[str, Any] = {"rule": "length", "chars": len(item.text), "limits": limits}
        fit = 1.0
        if item.channel == "sms":
            info = sms_segments(item.text)
            expl.update(info)
            max_segments = limits.get("max_segments")
            if max_segments and info["segments"] > max_segments:
                fit = min(fit, max_segments / info["segments"])
        max_chars = limits.get("max_chars")
        if max_chars and len(item.text) > max_chars:
            fit = min(fit, max_chars / len(item.text))
        expl["fit"] = round(fit, 4)
        return Result(self.name, fit, fit, expl, ["length"] if fit < 1.0 else [])


# --- emoji -------------------------------------------------------------------------------

# Emoji: pictographs of the supplementary planes and flags always; characters of the Basic
# Multilingual Plane only where they are emoji by default (Emoji_Presentation) or followed by
# VS16 (U+FE0F): "→", "™", "©" and "♥" in plain text are not emoji, "❤️" is.
_EMOJI_BMP = (
    "\u231A\u231B\u23E9-\u23EC\u23F0\u23F3\u25FD\u25FE\u2614\u2615\u2648-\u2653"
    "\u267F\u2693\u26A1\u26AA\u26AB\u26BD\u26BE\u26C4\u26C5\u26CE\u26D4\u26EA"
    "\u26F2\u26F3\u26F5\u26FA\u26FD\u2705\u270A\u270B\u2728\u274C\u274E"
    "\u2753-\u2755\u2757\u2795-\u2797\u27B0\u27BF\u2B1B\u2B1C\u2B50\u2B55"
)
_TEXT_SYMBOLS = (
    "\u00A9\u00AE\u203C\u2049\u2122\u2139\u2194-\u21AA\u2300-\u23FF\u24C2"
    "\u25AA-\u25FE\u2600-\u27BF\u2934\u2935\u2B05-\u2B55\u3030\u303D\u3297\u3299"
)
_EMOJI = re.compile(
    "(?:[\U0001F1E6-\U0001F1FF]{2}"  # flags
    f"|[\U0001F000-\U0001FAFF]|[{_EMOJI_BMP}]|[{_TEXT_SYMBOLS}]\uFE0F)"
    "[\uFE0F\U0001F3FB-\U0001F3FF]*"
    "(?:\u200D(?:[\U0001F000-\U0001FAFF]|[\u2600-\u27BF])\uFE0F?)*"
)


def emoji_hits(text: str) -> list[dict[str, Any]]:
    return [{"text": m.group(0), "span": [m.start(), m.end()]} for m in _EMOJI.finditer(text)]


class EmojiPolicy(_PerItem):
    """Emoji count against the channel's maximum (0 = none allowed). Fit 1 within it,
    else 1 / (1 + emoji over the limit)."""

    name = "emoji"
    version = 2

    def score(self, item: ScoringInput) -> Result:
        found = emoji_hits(item.text)
        limit = (item.brand.emoji_max or {}).get(item.channel)
        over = 0 if limit is None else max(0, len(found) - int(limit))
        fit = 1.0 / (1 + over)
        return Result(self.name, fit, fit, {
            "rule": "emoji_max", "count": len(found), "max": limit, "emoji": found[:20],
        }, ["emoji"] if over else [])


# --- greeting / sign-off -----------------------------------------------------------------


@cache
def _greeting_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    pattern = _phrase_pattern(phrases)
    return None if pattern is None else re.compile(rf"^\s*(?:{pattern.pattern})",
                                                   re.IGNORECASE)


@cache
def _signoff_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    pattern = _phrase_pattern(phrases)
    return None if pattern is None else re.compile(pattern.pattern, re.IGNORECASE)


_LINE = re.compile(r"[^\r\n]+")


class GreetingSignoff(_PerItem):
    """A reply on a channel with a required greeting must open with one; with a required
    sign-off, one of its last three non-empty lines must hold one. Fit is the share of the
    channel's required parts present (1 where the channel requires none)."""

    name = "greeting_signoff"
    version = 1

    def score(self, item: ScoringInput) -> Result:
        brand = item.brand
        greetings = tuple((brand.greetings or {}).get(item.channel) or ())
        signoffs = tuple((brand.signoffs or {}).get(item.channel) or ())
        checks: list[dict[str, Any]] = []
        broken: list[str] = []
        if greetings:
            m = _greeting_pattern(greetings).search(item.text)
            checks.append({"rule": "greeting", "required": list(greetings), "ok": bool(m),
                           "span": [m.start(), m.end()] if m else None})
            if not m:
                broken.append("greeting")
        if signoffs:
            lines = [m.start() for m in _LINE.finditer(item.text) if m.group(0).strip()][-3:]
            offset = lines[0] if lines else 0
            tail = item.text[offset:]
            m = _signoff_pattern(signoffs).search(tail)
            checks.append({"rule": "signoff", "required": list(signoffs), "ok": bool(m),
                           "span": [offset + m.start(), offset + m.end()] if m else None})
            if not m:
                broken.append("signoff")
        fit = 1.0 if not checks else sum(c["ok"] for c in checks) / len(checks)
        return Result(self.name, fit, fit, {"checks": checks}, broken)


# --- phrase rules ------------------------------------------------------------------------

# Longest alternatives first, or "I" would match the start of "I'll".
_FIRST_PERSON_I = re.compile(r"\b(?:I'm|I'll|I've|I'd|I|myself|mine|me|my)\b")
_FIRST_PERSON_WE = re.compile(r"\b(?:we're|we'll|we've|we'd|we|ourselves|ours|our|us)\b",
                              re.IGNORECASE)


@cache
def _brand_name_pattern(name: str) -> re.Pattern[str]:
    # The name's letters with any spacing, hyphens or case in between: "brisa home",
    # "BrisaHome", "Brisa-Home" all match; only the exact spelling passes.
    letters = [re.escape(ch) for ch in name if not ch.isspace()]
    return re.compile(r"(?<!\w)" + r"[\s\-_.]*".join(letters) + r"(?!\w)", re.IGNORECASE)


class PhraseRules(_PerItem):
    """Banned phrases, required phrases per channel, brand-name spelling and first person.
    Each violation costs 0.25 of the fit (floor 0)."""

    name = "phrases"
    version = 1

    def score(self, item: ScoringInput) -> Result:
        brand, text = item.brand, item.text
        violations: list[dict[str, Any]] = []
        for hit in _hits(_cached_phrases(tuple(brand.banned_phrases or ())), text):
            violations.append(dict(hit, rule="banned_phrase"))
        for phrase in (brand.required_phrases or {}).get(item.channel) or ():
            if _cached_phrases((phrase,)).search(text) is None:
                violations.append({"rule": "required_phrase", "text": phrase, "span": None})
        for name in brand.brand_names or ():
            for m in _brand_name_pattern(name).finditer(text):
                if m.group(0) != name:
                    violations.append({"rule": "brand_spelling", "text": m.group(0),
                                       "expected": name, "span": [m.start(), m.end()]})
        if brand.first_person == BrandVoice.FirstPerson.WE:
            wrong = _FIRST_PERSON_I
        elif brand.first_person == BrandVoice.FirstPerson.I:
            wrong = _FIRST_PERSON_WE
        else:
            wrong = None
        if wrong is not None:
            words = _hits(wrong, text)
            if words:
                violations.append({"rule": "first_person", "expected": brand.first_person,
                                   "words": words[:10]})
        fit = _clamp(1.0 - 0.25 * len(violations))
        broken = sorted({v["rule"] for v in violations})
        return Result(self.name, fit, fit, {"violations": violations}, broken)


@cache
def _cached_phrases(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    return _phrase_pattern(phrases)
