"""The default scorers and the overall brand-tone score that combines their fits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .models import BrandVoice
from .readability import Readability
from .scorers import (
    EmojiPolicy,
    Formality,
    GreetingSignoff,
    LengthFit,
    PhraseRules,
    Result,
    Scorer,
    _clamp,
    author_of,
)
from .tone import Politeness, Warmth

DEFAULT_SCORERS: tuple[Scorer, ...] = (
    Formality(), Warmth(), Politeness(), Readability(), LengthFit(), EmojiPolicy(),
    GreetingSignoff(), PhraseRules(),
)


class BrandTone:
    """The overall brand-tone score: the weighted mean of the dimensions' fits (weights in
    HANDOFF_AUDITOR["SCORING_WEIGHTS"], re-normalized over the dimensions present), stored
    0-1 and shown 0-100. Its version names every component's, so a new version of any
    scorer makes every message "not scored with the current scorers" for the catch-up.
    Dimensions left unscored because of the message's language are named in
    `not_scored` and carry no weight."""

    name = "brand_tone"

    def __init__(self, scorers: Sequence[Scorer], weights: dict[str, float]) -> None:
        self.scorers = tuple(scorers)
        self.weights = weights
        self.components = [author_of(s) for s in self.scorers]
        self.version = hashlib.sha1("+".join(self.components).encode()).hexdigest()[:10]

    def combine(self, results: Sequence[Result], brand: BrandVoice,
                not_scored: dict[str, str] | None = None,
                weights: dict[str, float] | None = None) -> Result:
        """`weights`: the brand's QA-calibrated weights (scoring.calibration), which replace
        the settings' for the dimensions they name."""
        calibrated = bool(weights)
        weights = {**self.weights, **(weights or {})}
        used = [(r, weights.get(r.name, 0.0)) for r in results]
        total = sum(w for _, w in used) or 1.0
        value = _clamp(sum(r.fit * w for r, w in used) / total)
        broken = sorted({rule for r in results for rule in r.broken})
        critical = sorted(set(broken) & set(brand.critical_rules or ()))
        return Result(self.name, value, value, {
            "score_100": round(100 * value, 1),
            "threshold_100": brand.tone_threshold,
            "weights": {r.name: round(w / total, 4) for r, w in used},
            "fits": {r.name: round(r.fit, 4) for r in results},
            "broken": broken,
            "critical_broken": critical,
            "components": self.components,
            "not_scored": dict(not_scored or {}),
            "calibrated": calibrated,
        }, broken)
