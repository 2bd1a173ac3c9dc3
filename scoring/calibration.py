"""Calibration to one brand.

1. brand_fit: a brand uploads 20-100 replies it likes and dislikes (BrandExample, in the
   admin or POST /api/v1/brands/{id}/examples/). `brand_fit_train` fits a logistic
   regression over what the scorers measure of each reply (warmth, formality, politeness,
   reading level, length, emoji, exclamations, questions, greeting/sign-off, phrase rules)
   plus one word feature, the mean smoothed log-ratio of the reply's words between the liked
   and disliked examples. Its honesty figure is a stratified 5-fold cross-validated AUC.
   `BrandFit` scores each reply with it: P(the brand would like it), with the features and
   words that moved it.
2. QA weights: the brand's QA reviewers answer "brand tone" on scorecards (human Scores).
   `brand_qa_calibrate` fits non-negative weights of the dimensions' fits to those answers
   (per conversation, means of its replies) and stores them; brand_tone then uses them for
   this brand. r before = the default weights' brand_tone vs the answers; r after = each
   conversation predicted by weights fitted on the others (leave-one-out), never on itself.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from .models import BrandCalibration, BrandExample, BrandVoice, Score
from .scorers import Result, ScoringInput, emoji_hits

MIN_EXAMPLES = 20
MAX_EXAMPLES_PER_UPLOAD = 100
MIN_PER_CLASS = 5
MIN_QA_CONVERSATIONS = 10
FEATURES = ("warmth", "formality", "politeness", "readability", "length_log", "emoji",
            "exclamations", "questions", "greeting_signoff", "phrases", "words")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


class CalibrationError(ValueError):
    """Why a calibration could not be fitted (shown to the user as is)."""


# --- features ----------------------------------------------------------------------------


def _word_table(texts: Sequence[str], liked: Sequence[bool]) -> dict[str, float]:
    """Smoothed log-ratio of each word's rate in liked vs disliked examples (add-one),
    for words seen at least twice."""
    pos, neg = Counter(), Counter()
    for text, ok in zip(texts, liked, strict=True):
        (pos if ok else neg).update({w.lower() for w in _WORD.findall(text)})
    n_pos, n_neg = max(1, sum(liked)), max(1, len(liked) - sum(liked))
    table = {}
    for w in set(pos) | set(neg):
        if pos[w] + neg[w] >= 2:
            table[w] = math.log((pos[w] + 1) / (n_pos + 2)) - math.log((neg[w] + 1) /
                                                                        (n_neg + 2))
    return table


def features_of(text: str, results: Mapping[str, Result], words: Mapping[str, float]
                ) -> list[float]:
    """The brand-fit features of one reply, from its scorers' results (0.5 where a
    dimension was not scored)."""
    def level(name: str) -> float:
        r = results.get(name)
        return 0.5 if r is None else r.value

    found = [words[w.lower()] for w in _WORD.findall(text) if w.lower() in words]
    return [
        level("warmth"), level("formality"), level("politeness"), level("readability"),
        math.log1p(len(text)) / math.log(1000), min(3, len(emoji_hits(text))) / 3,
        min(3, text.count("!")) / 3, 1.0 if "?" in text else 0.0,
        level("greeting_signoff"), level("phrases"),
        sum(found) / len(found) if found else 0.0,
    ]


def _score_texts(brand: BrandVoice, texts: Sequence[str], channels: Sequence[str]
                 ) -> list[dict[str, Result]]:
    from .language import language_detect
    from .scorer_set import DEFAULT_SCORERS
    from .tone import score_for_languages

    items = [ScoringInput(t, c or "web", "ai", brand, language_detect(t)[0])
             for t, c in zip(texts, channels, strict=True)]
    per = [(s.name, score_for_languages(s, items)) for s in DEFAULT_SCORERS]
    return [{name: batch[i] for name, batch in per if batch[i] is not None}
            for i in range(len(items))]


def _fit_logistic(x: list[list[float]], y: list[int]) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    n = len(x)
    mean = [sum(col) / n for col in zip(*x, strict=True)]
    scale = [max(1e-6, math.sqrt(sum((v - m) ** 2 for v in col) / n))
             for col, m in zip(zip(*x, strict=True), mean, strict=True)]
    z = [[(v - m) / s for v, m, s in zip(row, mean, scale, strict=True)] for row in x]
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(z, y)
    return {"features": list(FEATURES), "mean": mean, "scale": scale,
            "coef": [float(c) for c in model.coef_[0]],
            "intercept": float(model.intercept_[0])}


def _predict(fit: Mapping[str, Any], row: Sequence[float]) -> tuple[float, list[float]]:
    parts = [c * (v - m) / s for c, v, m, s in
             zip(fit["coef"], row, fit["mean"], fit["scale"], strict=True)]
    raw = fit["intercept"] + sum(parts)
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, raw)))), parts


# --- brand_fit ---------------------------------------------------------------------------


def brand_examples_add(*, brand: BrandVoice, examples: Sequence[Mapping[str, Any]]
                       ) -> list[BrandExample]:
    """Store uploaded examples ({"text", "liked", "channel"?}); a text the brand already
    has is updated (liked/channel), not duplicated. At most MAX_EXAMPLES_PER_UPLOAD."""
    if not examples:
        raise CalibrationError("no examples given")
    if len(examples) > MAX_EXAMPLES_PER_UPLOAD:
        raise CalibrationError(
            f"{len(examples)} examples in one upload; at most {MAX_EXAMPLES_PER_UPLOAD}")
    saved = []
    with transaction.atomic():
        for e in examples:
            obj, _ = BrandExample.objects.update_or_create(
                brand=brand, text=e["text"].strip(),
                defaults={"liked": bool(e["liked"]), "channel": e.get("channel") or ""})
            saved.append(obj)
    return saved


def brand_fit_train(*, brand: BrandVoice) -> BrandCalibration:
    """Fit brand_fit on the brand's examples; raises CalibrationError when there are too
    few (MIN_EXAMPLES in all, MIN_PER_CLASS of each kind)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    examples = list(BrandExample.objects.filter(brand=brand))
    liked = [e.liked for e in examples]
    if len(examples) < MIN_EXAMPLES or min(sum(liked), len(liked) - sum(liked)) < MIN_PER_CLASS:
        raise CalibrationError(
            f"{brand} has {sum(liked)} liked and {len(liked) - sum(liked)} disliked examples; "
            f"brand fit needs at least {MIN_EXAMPLES} with {MIN_PER_CLASS} of each")
    texts = [e.text for e in examples]
    results = _score_texts(brand, texts, [e.channel for e in examples])
    y = [int(v) for v in liked]
    # Cross-validated: the word table and the model are fitted inside each fold.
    folds = StratifiedKFold(n_splits=min(5, min(sum(y), len(y) - sum(y))), shuffle=True,
                            random_state=0)
    held: list[float] = [0.0] * len(y)
    for train, test in folds.split(texts, y):
        words = _word_table([texts[i] for i in train], [liked[i] for i in train])
        fit = _fit_logistic([features_of(texts[i], results[i], words) for i in train],
                            [y[i] for i in train])
        for i in test:
            held[i] = _predict(fit, features_of(texts[i], results[i], words))[0]
    words = _word_table(texts, liked)
    fit = _fit_logistic([features_of(t, r, words) for t, r in zip(texts, results,
                                                                   strict=True)], y)
    fit["words"] = {w: round(v, 4) for w, v in words.items()}
    calibration, _ = BrandCalibration.objects.update_or_create(brand=brand, defaults={
        "fit_model": fit, "fit_examples": len(examples),
        "fit_cv_auc": round(float(roc_auc_score(y, held)), 4), "fit_at": timezone.now(),
    })
    return calibration


class BrandFit:
    """P(the brand would like this reply), from its BrandCalibration.fit_model; applies
    only to brands that have one. Scored after the other dimensions (it reads them)."""

    name = "brand_fit"
    version = 1

    def score(self, text: str, results: Mapping[str, Result], fit: Mapping[str, Any]
              ) -> Result:
        words = fit.get("words") or {}
        value, parts = _predict(fit, features_of(text, results, words))
        hits = [{"text": m.group(0), "span": [m.start(), m.end()],
                 "log_ratio": words[m.group(0).lower()]}
                for m in _WORD.finditer(text) if m.group(0).lower() in words]
        hits.sort(key=lambda h: -abs(h["log_ratio"]))
        return Result(self.name, value, value, {
            "probability_liked": round(value, 4),
            "features": {f: round(p, 4) for f, p in zip(FEATURES, parts, strict=True)},
            "words": hits[:10],
        })


# --- QA reviewers' brand-tone answers ----------------------------------------------------


def _qa_pairs(brand: BrandVoice) -> tuple[list[dict[str, float]], list[float]]:
    from .qa import SCORE_PREFIX

    human: dict[int, list[float]] = defaultdict(list)
    for cid, value in Score.objects.filter(
        brand=brand, source=Score.Source.HUMAN, subject_type=Score.SubjectType.CONVERSATION,
        name=f"{SCORE_PREFIX}brand_tone",
    ).values_list("conversation_id", "value"):
        human[cid].append(value)
    fits: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    seen: set[int] = set()
    for cid, mid, expl in (
        Score.objects.filter(brand=brand, source=Score.Source.AUTO, name="brand_tone",
                             subject_type=Score.SubjectType.MESSAGE,
                             conversation_id__in=list(human))
        .order_by("message_id", "-created_at", "-pk")
        .values_list("conversation_id", "message_id", "explanations")
    ):
        if mid in seen:
            continue
        seen.add(mid)
        for name, fit in (expl.get("fits") or {}).items():
            fits[cid][name].append(fit)
    cids = sorted(c for c in human if c in fits)
    x = [{k: sum(v) / len(v) for k, v in fits[c].items()} for c in cids]
    y = [sum(human[c]) / len(human[c]) for c in cids]
    return x, y


def _combine(row: Mapping[str, float], weights: Mapping[str, float]) -> float:
    used = [(v, weights.get(k, 0.0)) for k, v in row.items()]
    total = sum(w for _, w in used)
    return sum(v * w for v, w in used) / total if total else 0.0


def _nnls_weights(rows: Sequence[Mapping[str, float]], y: Sequence[float],
                  names: Sequence[str]) -> dict[str, float]:
    """Non-negative weights (summing to 1) of the dimensions' fits that best predict the
    answers up to scale and offset (what a correlation measures): least squares on centred
    fits and answers, with a small ridge so that a dimension that barely varies does not
    take a large weight on noise. All zero (no dimension helps): equal weights."""
    import numpy as np
    from scipy.optimize import nnls

    a = np.array([[r.get(n, 0.5) for n in names] for r in rows])
    b = np.array(y, dtype=float)
    a = a - a.mean(axis=0)
    b = b - b.mean()
    lam = 0.05 * len(rows) * float(np.mean(a.var(axis=0)) or 1.0)
    a = np.vstack([a, math.sqrt(lam) * np.eye(len(names))])
    b = np.concatenate([b, np.zeros(len(names))])
    w, _ = nnls(a, b)
    total = float(w.sum())
    if total <= 0:
        return {n: round(1.0 / len(names), 4) for n in names}
    return {n: round(float(v) / total, 4) for n, v in zip(names, w, strict=True)}


def brand_qa_calibrate(*, brand: BrandVoice, default_weights: Mapping[str, float]
                       ) -> BrandCalibration:
    """Fit the brand's dimension weights to its reviewers' brand-tone answers; store them
    with r before and after (leave-one-out). Raises CalibrationError under
    MIN_QA_CONVERSATIONS reviewed conversations."""
    from scipy.stats import pearsonr

    x, y = _qa_pairs(brand)
    if len(x) < MIN_QA_CONVERSATIONS:
        raise CalibrationError(
            f"{brand} has {len(x)} reviewed conversations with a brand-tone answer and "
            f"scored replies; calibration needs {MIN_QA_CONVERSATIONS}")
    names = sorted({k for row in x for k in row})
    before = [_combine(row, default_weights) for row in x]
    loo = []
    for i in range(len(x)):
        w = _nnls_weights(x[:i] + x[i + 1:], y[:i] + y[i + 1:], names)
        loo.append(_combine(x[i], w))

    def r(a: Sequence[float]) -> float | None:
        if len(set(a)) < 2 or len(set(y)) < 2:
            return None
        return round(float(pearsonr(a, y)[0]), 4)

    calibration, _ = BrandCalibration.objects.update_or_create(brand=brand, defaults={
        "qa_weights": _nnls_weights(x, y, names), "qa_conversations": len(x),
        "qa_r_before": r(before), "qa_r_after": r(loo), "qa_at": timezone.now(),
    })
    return calibration


def calibrations_for(brand_ids: Sequence[int]) -> dict[int, BrandCalibration]:
    return {c.brand_id: c for c in BrandCalibration.objects.filter(brand_id__in=brand_ids)}
