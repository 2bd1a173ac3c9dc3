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
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
