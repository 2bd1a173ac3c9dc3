"""The learned tone dimensions and politeness: warmth (v2, a linear model trained on
human-graded text), customer frustration (a linear classifier), and politeness/empathy
(the strategies of Danescu-Niculescu-Mizil et al. 2013 as rules; no politeness-labelled
corpus ships in a wheel, see docs/scoring.md).

The models are read from scoring/tone_weights/ (trained by `manage.py train_tone`); each
explanation names the words that moved the score, with their contribution and span.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from . import tone_lexicon, tone_phrases
from .scorers import Result, ScoringInput, _band_fit, _clamp, _PerItem, _phrase_pattern
from .textmodel import LinearTextModel, model_load


@cache
def vader() -> SentimentIntensityAnalyzer:
    # Reads the lexicons shipped inside the wheel; no download.
    return SentimentIntensityAnalyzer()


def vader_features(text: str) -> dict[str, float]:
    p = vader().polarity_scores(text)
    return {"vader_compound": p["compound"], "vader_pos": p["pos"], "vader_neg": p["neg"]}


class _Learned(_PerItem):
    """A scorer whose level is a shipped LinearTextModel's output in English, and the
    lexicon scorer's (scoring/tone_lexicon.py) in the languages whose lexicon wheel is
    installed (the `languages` extra)."""

    model_name = ""
    languages = frozenset({"en"}) | tone_lexicon.available()

    @property
    def model(self) -> LinearTextModel:
        return model_load(self.model_name)

    def level(self, text: str, language: str = "en") -> tuple[float, dict[str, Any]]:
        if language != "en":
            return self.lexicon_level(text, language)
        model = self.model
        dense = vader_features(text) if model.dense else None
        return model.explain(text, dense)

    def lexicon_level(self, text: str, language: str) -> tuple[float, dict[str, Any]]:
        raise NotImplementedError


class Warmth(_Learned):
    """How warm a message reads, 0-1 (0.5 neutral): a ridge regression over word n-grams
    and VADER's lexicon scores, trained on tweets graded by CrowdFlower panels, IMDB
    reviews and VADER's human-rated lexicon (scoring/training.py). `fit` against the
    brand's warmth band."""

    name = "warmth"
    version = 3  # 3: Portuguese, French, German by lexicon; 2: learned; 1: VADER alone
    model_name = "warmth"

    def lexicon_level(self, text: str, language: str) -> tuple[float, dict[str, Any]]:
        return tone_lexicon.warmth_level(text, language)

    def score(self, item: ScoringInput) -> Result:
        level, expl = self.level(item.text, item.language)
        brand = item.brand
        fit = _band_fit(level, brand.warmth_min, brand.warmth_max)
        return Result(self.name, level, fit, {
            "level": round(level, 4), "band": [brand.warmth_min, brand.warmth_max],
            "fit": round(fit, 4), **expl,
        })


class Frustration(_Learned):
    """How frustrated a customer sounds, 0-1: a logistic classifier's probability that a
    panel would call the message negative, trained on graded tweets (mostly complaints to
    airlines and brands). Customers' messages only; stored as context, no brand fit."""

    name = "frustration"
    version = 2  # 2: Portuguese, French, German by lexicon
    model_name = "frustration"

    def lexicon_level(self, text: str, language: str) -> tuple[float, dict[str, Any]]:
        return tone_lexicon.frustration_level(text, language)

    def score(self, item: ScoringInput) -> Result:
        level, expl = self.level(item.text, item.language)
        return Result(self.name, level, 1.0, {"level": round(level, 4), **expl})


# --- politeness / empathy (rules) --------------------------------------------------------

# Danescu-Niculescu-Mizil et al. (2013), "A computational approach to politeness": the
# strategies their annotators' ratings rewarded (+) and punished (-), as support replies
# use them; plus empathy acknowledgements, which the brand guides ask for.
_POLITE: dict[str, re.Pattern[str] | None] = {
    "gratitude": _phrase_pattern(["thank you", "thanks", "thank", "appreciate",
                                  "grateful"]),
    "apology": _phrase_pattern(["sorry", "apologies", "apologize", "apologise",
                                "my apologies", "our apologies", "we regret"]),
    "please": _phrase_pattern(["please", "kindly"]),
    "greeting": _phrase_pattern(["hi", "hello", "good morning", "good afternoon",
                                 "good evening", "dear", "welcome"]),
    "deference": _phrase_pattern(["great question", "good question", "you're right",
                                  "you are right", "fair point", "happy to help",
                                  "glad to help", "we'd be happy", "we would be happy"]),
    "hedge": _phrase_pattern(["could you", "would you", "might", "perhaps", "maybe",
                              "if possible", "when you have a moment", "would it be"]),
    "empathy": _phrase_pattern([
        "i understand", "we understand", "i can imagine", "i can see how",
        "that must be", "sorry to hear", "i hear you", "that sounds frustrating",
        "i know how", "completely understand", "totally understand",
        "understand your frustration", "understandable",
    ]),
}
_IMPOLITE: dict[str, re.Pattern[str] | None] = {
    "direct_start": re.compile(r"^\s*(?:so|then|well|look|listen)\b[ ,]", re.IGNORECASE),
    "blame": _phrase_pattern(["you should have", "you need to", "you must", "you didn't",
                              "your fault", "as i said", "as i already said",
                              "as already stated", "obviously", "clearly you"]),
    "dismissive": _phrase_pattern(["calm down", "whatever", "not our problem",
                                   "nothing we can do", "can't help you", "deal with it",
                                   "read the", "stop"]),
    "shouting": re.compile(r"!{2,}|\b[A-Z]{4,}\b"),
}


class Politeness(_PerItem):
    """Politeness and empathy, 0-1: (polite + 1) / (polite + impolite + 2) over the
    strategies found, each capped at two hits; 0.5 with none. Rules, not a model; the
    message's language picks the phrase lists (English here, the others in
    scoring/tone_phrases.py)."""

    name = "politeness"
    version = 2  # 2: Spanish, Portuguese, French, German (scoring/tone_phrases.py)
    languages = frozenset({"en"}) | frozenset(tone_phrases.POLITE)

    def score(self, item: ScoringInput) -> Result:
        text = item.text
        polite = self._found(tone_phrases.POLITE.get(item.language, _POLITE), text)
        impolite = self._found(tone_phrases.IMPOLITE.get(item.language, _IMPOLITE), text)
        up = sum(min(2, len(v)) for v in polite.values())
        down = sum(min(2, len(v)) for v in impolite.values())
        level = (up + 1) / (up + down + 2)
        return Result(self.name, level, _clamp(level * 2), {
            "level": round(level, 4),
            "polite": polite, "impolite": impolite,
        })

    @staticmethod
    def _found(patterns: dict[str, re.Pattern[str] | None], text: str
               ) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for strategy, pattern in patterns.items():
            if pattern is None:
                continue
            hits = [{"text": m.group(0), "span": [m.start(), m.end()]}
                    for m in pattern.finditer(text)]
            if hits:
                out[strategy] = hits[:5]
        return out


def score_for_languages(scorer: Any, items: Sequence[ScoringInput]) -> list[Result | None]:
    """Run a scorer on the items in languages it knows; None (not scored: language) for the
    rest. A scorer without a `languages` attribute takes every language."""
    languages = getattr(scorer, "languages", None)
    if languages is None:
        return list(scorer.score_batch(items))
    todo = [i for i, item in enumerate(items) if item.language in languages]
    results: list[Result | None] = [None] * len(items)
    if todo:
        for i, result in zip(todo, scorer.score_batch([items[i] for i in todo]),
                             strict=True):
            results[i] = result
    return results
