"""The language a message is written in, offline: py3langid (Lui & Baldwin's langid.py, a
naive Bayes model over byte n-grams for 97 languages, shipped inside its 4.6 MB wheel; BSD).
lingua detects short texts better but its wheel is 96 MB; see docs/scoring.md.

A text with no letters, or one the model is unsure of (below MIN_CONFIDENCE; "ok", "gracias!"
on their own), is "und" (undetermined): language-bound scorers leave it unscored rather than
score it as English.
"""

from __future__ import annotations

import re
import threading
from functools import cache
from typing import Any

# What each dimension can score; the others are "not scored: language".
# Politeness and formality (phrase lists); warmth and frustration also need the language's
# lexicon wheel (scoring/tone_lexicon.py: Portuguese, French, German; no Spanish one ships).
TONE_LANGUAGES = frozenset({"en", "es", "pt", "fr", "de"})
READABILITY_LANGUAGES = frozenset({"en", "es", "pt", "fr", "de"})
MIN_CONFIDENCE = 0.3
UNDETERMINED = "und"

NAMES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "fr": "French", "de": "German",
    "it": "Italian", "nl": "Dutch", "pl": "Polish", "sv": "Swedish", "da": "Danish",
    "no": "Norwegian", "fi": "Finnish", "tr": "Turkish", "ru": "Russian", "uk": "Ukrainian",
    "ar": "Arabic", "he": "Hebrew", "hi": "Hindi", "ja": "Japanese", "ko": "Korean",
    "zh": "Chinese", "id": "Indonesian", "ms": "Malay", "vi": "Vietnamese", "th": "Thai",
    "el": "Greek", "cs": "Czech", "ro": "Romanian", "hu": "Hungarian", "ca": "Catalan",
    UNDETERMINED: "undetermined",
}

_LETTER = re.compile(r"[^\W\d_]")
_lock = threading.Lock()


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    with _lock:
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_name(code: str) -> str:
    return NAMES.get(code, code)


def language_detect(text: str) -> tuple[str, float]:
    """(ISO 639-1 code or "und", the model's probability)."""
    if not _LETTER.search(text or ""):
        return UNDETERMINED, 0.0
    code, probability = _identifier().classify(text)
    probability = float(probability)
    if probability < MIN_CONFIDENCE:
        return UNDETERMINED, probability
    return code, probability
