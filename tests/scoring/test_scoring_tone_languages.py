"""Tone in Spanish, Portuguese, French and German: the lexicon scorer's words and rules,
its figures pinned on the held-out part of a hand-labelled multilingual set
(tests/fixtures/scoring/tone_languages.json), and messages in those languages scored end to
end with word-level explanations instead of "not scored: language"."""

import json
from pathlib import Path

import pytest

from scoring import tone_lexicon
from scoring.models import BrandVoice
from scoring.validation import tone_languages_report
from tests.scoring.test_scoring_services import record, scores_of
from tests.support.scoring_brand import BRISA

ROWS = json.loads((Path(__file__).parents[1] / "fixtures" / "scoring" /
                   "tone_languages.json").read_text())["rows"]


def test_the_lexicons_are_read_from_the_installed_wheels():
    assert tone_lexicon.available() == {"pt", "fr", "de"}
    sizes = {code: len(tone_lexicon.lexicon(code)) for code in ("pt", "fr", "de")}
    assert sizes["pt"] > 5000 and sizes["fr"] > 8000 and sizes["de"] > 7000
    assert tone_lexicon.lexicon("es") is None  # no Spanish lexicon ships in a usable wheel


def test_words_negation_and_boosters_explain_the_score():
    level, expl = tone_lexicon.warmth_level("Das Paket ist gut angekommen.", "de")
    assert level > 0.6
    assert expl["up"] == [{"text": "gut", "span": [14, 17], "contribution": 2.5}]
    negated, expl = tone_lexicon.warmth_level("Das Paket ist nicht gut angekommen.", "de")
    assert negated < 0.5 and expl["down"][0]["text"] == "gut"
    assert expl["down"][0]["contribution"] == pytest.approx(2.5 * -0.74)
    boosted, _ = tone_lexicon.warmth_level("Das Paket ist sehr gut angekommen.", "de")
    assert boosted > level
    # The negation is taken by the first rated word after it, not carried past it.
    _, expl = tone_lexicon.warmth_level("Nicht gut, und leider schlecht.", "de")
    assert {w["text"]: w["contribution"] > 0 for w in expl["up"] + expl["down"]} == {
        "gut": False, "leider": False, "schlecht": False}
    # French elisions and accents: "l'horrible" is "horrible"; "Désolé" is found folded.
    _, expl = tone_lexicon.warmth_level("C'est l'horrible retard, désolé.", "fr")
    assert {w["text"] for w in expl["down"]} == {"l'horrible", "retard", "désolé"}


def test_frustration_rises_with_negative_words_and_shouting():
    calm, _ = tone_lexicon.frustration_level("Qual é o prazo de entrega?", "pt")
    angry, expl = tone_lexicon.frustration_level(
        "Isso é um absurdo, o pedido chegou quebrado!!", "pt")
    assert calm < 0.3 < 0.9 < angry
    assert expl["cues"] == [{"text": "!!", "span": [43, 45]}]


def test_figures_on_the_held_out_labelled_set_are_pinned():
    figures = tone_languages_report(ROWS, split="test")
    assert {k: v["items"] for k, v in figures.items()} == {"es": 10, "pt": 10, "fr": 10,
                                                           "de": 10}
    assert all(v["detected"] == 10 for v in figures.values())
    r = {k: v["warmth_r"] for k, v in figures.items()}
    assert r["es"] is None  # not scored: language
    assert r == pytest.approx({"es": None, "pt": 0.692, "fr": 0.791, "de": 0.645}, abs=5e-3)
    assert [figures[k]["formality_auc"] for k in ("es", "pt", "fr", "de")] == pytest.approx(
        [1.0, 0.875, 1.0, 1.0])
    assert all(figures[k]["politeness_auc"] == 1.0 for k in figures)
    assert figures["es"]["frustration_auc"] is None
    assert [figures[k]["frustration_auc"] for k in ("pt", "fr", "de")] == pytest.approx(
        [1.0, 1.0, 0.75])


@pytest.fixture
def brisa(db):
    return BrandVoice.objects.create(**BRISA, is_default=True)


@pytest.mark.django_db
def test_a_portuguese_customer_gets_warmth_and_frustration_with_their_words(brisa):
    m = record("Isso é um absurdo, o pedido chegou quebrado e ninguém responde!!",
               direction="inbound", author_kind="customer")
    from scoring.services import messages_score

    messages_score(message_ids=[m.pk])
    scores = scores_of(m)
    assert set(scores) == {"language", "warmth", "frustration"}
    assert scores["language"].explanations["not_scored"] == []
    assert scores["frustration"].value > 0.9
    assert scores["frustration"].explanations["model"] == "lexicon-pt"
    assert scores["warmth"].value < 0.3
    assert [w["text"] for w in scores["warmth"].explanations["down"]][0] == "absurdo"


@pytest.mark.django_db
def test_a_german_reply_gets_every_tone_dimension(brisa):
    m = record("Sehr geehrte Frau Meier, vielen Dank für Ihre Geduld. Wir helfen Ihnen "
               "gerne weiter.", channel="email")
    from scoring.services import messages_score

    messages_score(message_ids=[m.pk])
    scores = scores_of(m)
    assert scores["language"].explanations["language"] == "de"
    assert scores["language"].explanations["not_scored"] == []
    assert scores["warmth"].value > 0.7
    assert scores["warmth"].explanations["lexicon"].startswith("German Polarity Lexicon")
    assert scores["formality"].value == pytest.approx(0.8)  # Sehr geehrte, Ihre, Ihnen
    assert "gratitude" in scores["politeness"].explanations["polite"]
    assert scores["brand_tone"].explanations["not_scored"] == {}
