"""Whole-word, case-insensitive phrase matching: the one pattern builder behind every
phrase list of the scorers (brand phrases, register, politeness, in every language)."""

from __future__ import annotations

import re
from collections.abc import Sequence


def phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str] | None:
    """One pattern matching any of the phrases as whole words (inner spaces match any
    whitespace), longest first; None for an empty list."""
    phrases = [p for p in phrases if p and p.strip()]
    if not phrases:
        return None
    alternatives = "|".join(
        r"\s+".join(re.escape(word) for word in p.split())
        for p in sorted(phrases, key=len, reverse=True)
    )
    # A look-ahead for the phrases' first characters lets the engine skip every position
    # that cannot start one before trying the alternatives (a third of the scorers' regex
    # time in bench/scoring.py); it matches exactly what the pattern without it matches.
    first = "".join(sorted({re.escape(p.strip()[0]) for p in phrases}))
    return re.compile(rf"(?=[{first}])(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
