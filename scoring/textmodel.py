"""A small linear text model: the cheap default behind the learned tone dimensions.

Features are word unigrams and bigrams (tf-idf with sublinear term frequency, L2-normalised
over the model's vocabulary) plus optional dense features (VADER's lexicon scores); the score
is a linear function of them. The same `featurize` is used to train (scoring/training.py)
and to score, so the rule exists once. Because the model is linear, what moved a score is
exact: each word's contribution is its weight times its feature value, summed over the
unigram and the bigrams it is part of — the word-level explanations.

Weights are stored as gzipped JSON inside the package (scoring/tone_weights/), read once.
No scikit-learn, numpy or torch at scoring time.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parent / "tone_weights"

# Words (letters, digits, inner apostrophes), and "!" / "?" runs as tokens of their own.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]+")


def tokens(text: str) -> list[tuple[str, int, int]]:
    """Lower-cased tokens with their character spans."""
    out = []
    for m in _TOKEN.finditer(text):
        tok = m.group(0).lower()
        if tok[0] in "!?":
            tok = tok[:1] + ("+" if len(tok) > 1 else "")
        out.append((tok, m.start(), m.end()))
    return out


def ngrams(toks: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Unigrams and bigrams ("not good" as "not_good") with the token indexes they span."""
    grams = [(t[0], i, i) for i, t in enumerate(toks)]
    grams += [(f"{toks[i][0]}_{toks[i + 1][0]}", i, i + 1) for i in range(len(toks) - 1)]
    return grams


@dataclass
class LinearTextModel:
    """score = intercept + sum(weight[g] * tfidf[g]) + sum(dense_weight[k] * dense[k]).

    `link` maps the score to 0-1: "identity" (regression on -1..1, value = (s + 1) / 2) or
    "logistic" (a classifier's log-odds, value = sigmoid(s))."""

    name: str
    vocab: dict[str, tuple[float, float]]  # n-gram -> (idf, weight)
    intercept: float
    link: str = "identity"
    dense: dict[str, float] = field(default_factory=dict)  # dense feature -> weight
    meta: dict[str, Any] = field(default_factory=dict)

    def features(self, text: str) -> tuple[list[tuple[str, int, int]],
                                           dict[str, float], dict[str, list[int]]]:
        """Tokens, the tf-idf vector (n-gram -> value) and each n-gram's token indexes."""
        # The hot loop of every learned scorer (bench/scoring.py): local names, and a
        # gram's token indexes appended as a tuple rather than through range().
        toks = tokens(text)
        vocab = self.vocab
        counts: dict[str, int] = {}
        where: dict[str, list[int]] = {}
        for gram, first, last in ngrams(toks):
            if gram not in vocab:
                continue
            span = (first,) if first == last else (first, last)
            if gram in counts:
                counts[gram] += 1
                where[gram] += span
            else:
                counts[gram] = 1
                where[gram] = list(span)
        log = math.log
        vector = {g: (1.0 + log(c)) * vocab[g][0] for g, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values()))
        if norm:
            vector = {g: v / norm for g, v in vector.items()}
        return toks, vector, where

    def raw(self, vector: dict[str, float], dense: dict[str, float]) -> float:
        s = self.intercept + sum(self.vocab[g][1] * v for g, v in vector.items())
        return s + sum(self.dense.get(k, 0.0) * v for k, v in dense.items())

    def to_unit(self, s: float) -> float:
        if self.link == "logistic":
            return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, s))))
        return max(0.0, min(1.0, (s + 1.0) / 2.0))

    def explain(self, text: str, dense: dict[str, float] | None = None,
                *, top: int = 8) -> tuple[float, dict[str, Any]]:
        """The value 0-1 and what moved it: the words that pushed it up and down most
        (contribution in the model's raw units, with spans), and the dense features'."""
        dense = dense or {}
        toks, vector, where = self.features(text)
        s = self.raw(vector, dense)
        per_token = [0.0] * len(toks)
        for gram, value in vector.items():
            idx = where[gram]
            share = self.vocab[gram][1] * value / len(idx)
            for i in idx:
                per_token[i] += share
        # (rounded contribution, token index) in token order; the sorts are stable, so
        # equal contributions keep text order. Only the `top` shown become dicts.
        ranked = [(round(c, 4), i) for i, c in enumerate(per_token) if abs(c) >= 1e-4]
        up = sorted((w for w in ranked if w[0] > 0), key=lambda w: -w[0])[:top]
        down = sorted((w for w in ranked if w[0] < 0), key=lambda w: w[0])[:top]

        def word(contribution: float, i: int) -> dict[str, Any]:
            start, end = toks[i][1], toks[i][2]
            return {"text": text[start:end], "span": [start, end],
                    "contribution": contribution}

        return self.to_unit(s), {
            "model": self.meta.get("id", self.name),
            "raw": round(s, 4),
            "up": [word(c, i) for c, i in up],
            "down": [word(c, i) for c, i in down],
            "dense": {k: round(self.dense.get(k, 0.0) * v, 4) for k, v in dense.items()},
        }

    def predict(self, text: str, dense: dict[str, float] | None = None) -> float:
        _, vector, _ = self.features(text)
        return self.to_unit(self.raw(vector, dense or {}))

    # --- storage ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        # Rounded: 5 significant digits are far below the models' error and halve the file.
        return {
            "name": self.name, "link": self.link, "intercept": round(self.intercept, 6),
            "dense": {k: round(v, 6) for k, v in self.dense.items()},
            "meta": self.meta,
            "vocab": {g: [float(f"{idf:.5g}"), float(f"{w:.5g}")]
                      for g, (idf, w) in sorted(self.vocab.items())},
        }

    def save(self, path: Path) -> int:
        data = json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)
        # mtime=0: the same weights give the same bytes, so a retrain that changes nothing
        # changes no committed file.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(data.encode())
        return path.stat().st_size

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearTextModel:
        return cls(
            name=data["name"], link=data["link"], intercept=data["intercept"],
            dense=dict(data.get("dense") or {}), meta=dict(data.get("meta") or {}),
            vocab={g: (iw[0], iw[1]) for g, iw in data["vocab"].items()},
        )


@cache
def model_load(name: str) -> LinearTextModel:
    """A shipped model by name (scoring/tone_weights/<name>.json.gz), read once."""
    with gzip.open(WEIGHTS_DIR / f"{name}.json.gz", "rt", encoding="utf-8") as fh:
        return LinearTextModel.from_json(json.load(fh))


def vocabulary_select(texts: Sequence[str], *, size: int, min_df: int = 3
                      ) -> dict[str, float]:
    """The `size` n-grams found in the most documents (at least min_df), with smoothed idf
    as scikit-learn computes it: ln((1 + n) / (1 + df)) + 1."""
    df: dict[str, int] = {}
    for text in texts:
        for gram in {g for g, _, _ in ngrams(tokens(text))}:
            df[gram] = df.get(gram, 0) + 1
    kept = sorted((g for g, c in df.items() if c >= min_df), key=lambda g: (-df[g], g))[:size]
    n = len(texts)
    return {g: math.log((1 + n) / (1 + df[g])) + 1.0 for g in kept}


def design_rows(texts: Sequence[str], idf: dict[str, float],
                dense: Callable[[str], dict[str, float]] | None = None,
                dense_names: Sequence[str] = ()) -> tuple[list[int], list[int], list[float]]:
    """Sparse (row, column, value) triplets of the training matrix, built with the same
    `features` the scorer uses: the vocabulary's n-grams, then the dense features."""
    probe = LinearTextModel(name="probe", vocab={g: (v, 0.0) for g, v in idf.items()},
                            intercept=0.0)
    column = {g: j for j, g in enumerate(idf)}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i, text in enumerate(texts):
        _, vector, _ = probe.features(text)
        for g, v in vector.items():
            rows.append(i)
            cols.append(column[g])
            vals.append(v)
        if dense is not None:
            values = dense(text)
            for k, name in enumerate(dense_names):
                rows.append(i)
                cols.append(len(idf) + k)
                vals.append(values[name])
    return rows, cols, vals
