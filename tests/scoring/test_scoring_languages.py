"""Languages: each message's language detected offline (a multilingual fixture), reading
level per language, and the explicit "not scored: language" path end to end — a message in
a language a dimension does not know gets no number for it, a `language` row that says so,
and a brand_tone over the rest."""

import json
from pathlib import Path

import pytest

from scoring.language import UNDETERMINED, language_detect
from scoring.models import BrandVoice, Score
from scoring.readability import Readability, reading_grade, syllables
from scoring.scorers import ScoringInput
from scoring.selectors import language_summary, message_ids_to_score
from scoring.services import LANGUAGE_AUTHOR, messages_score, scorer_set_current
from tests.scoring.test_scoring_services import record, scores_of
from tests.support.scoring_brand import BRISA, brisa_brand

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "scoring" /
                      "languages.json").read_text())


@pytest.mark.parametrize(("expected", "text"), FIXTURE)
def test_language_detected_on_a_multilingual_fixture(expected, text):
    code, confidence = language_detect(text)
    assert code == expected
    assert confidence >= 0.3


def test_text_without_letters_or_too_short_to_tell_is_undetermined():
    assert language_detect("12345 !!! 👍")[0] == UNDETERMINED
    assert language_detect("")[0] == UNDETERMINED
    assert language_detect("gracias!")[0] == UNDETERMINED  # the model is unsure


def test_syllables_per_language():
    assert syllables("entrega", "es") == 3
    assert syllables("atenção", "pt") == 3
    assert syllables("table", "fr") == 1          # the mute e
    assert syllables("Rückerstattung", "de") == 4


def test_reading_grade_uses_each_languages_formula():
    easy = {
        "es": "Su pedido llega hoy. Gracias por esperar.",
        "pt": "Seu pedido chega hoje. Obrigado por esperar.",
        "fr": "Votre colis arrive demain. Merci beaucoup.",
        "de": "Ihr Paket kommt heute. Danke für die Geduld.",
    }
    hard = {
        "es": "La determinación administrativa de la elegibilidad para el reembolso "
              "correspondiente requiere documentación justificativa exhaustivamente verificada "
              "por los departamentos institucionales competentes.",
        "pt": "A determinação administrativa da elegibilidade para o reembolso correspondente "
              "requer documentação comprobatória exaustivamente verificada pelos departamentos "
              "institucionais competentes.",
        "fr": "La détermination administrative de l'éligibilité au remboursement correspondant "
              "nécessite une documentation justificative exhaustivement vérifiée par les "
              "départements institutionnels compétents.",
        "de": "Die verwaltungsrechtliche Feststellung der Erstattungsberechtigung erfordert "
              "umfangreiche Nachweisdokumentation, welche durch die zuständigen "
              "Fachabteilungen ordnungsgemäß überprüft werden muss.",
    }
    formulas = {"es": "crawford", "pt": "martins_flesch_pt", "fr": "kandel_moles",
                "de": "wiener_sachtextformel_1"}
    for language in easy:
        low, counts = reading_grade(easy[language], language)
        high, _ = reading_grade(hard[language], language)
        assert counts["formula"] == formulas[language]
        assert low < 10 and high >= 12 and high - low >= 6, (language, low, high)
    brand = brisa_brand(max_reading_grade=8)
    fits = [Readability().score_batch([ScoringInput(hard["de"], "email", "ai", brand, "de")])[0]]
    assert fits[0].fit < 0.5 and fits[0].explanations["language"] == "de"


# --- end to end: not scored: language ----------------------------------------------------


@pytest.fixture
def brisa(db):
    return BrandVoice.objects.create(**BRISA, is_default=True)


@pytest.mark.django_db
def test_a_reply_in_spanish_gets_register_politeness_and_readability_but_no_warmth(brisa):
    # No Spanish sentiment lexicon ships in a wheel we can install (docs/scoring.md):
    # warmth is "not scored: language"; the phrase-list dimensions are scored in Spanish.
    m = record("Gracias por esperar. Le informamos que su pedido llegará el martes por la "
               "mañana.")
    messages_score(message_ids=[m.pk])
    scores = scores_of(m)
    language = scores["language"]
    assert language.author == LANGUAGE_AUTHOR
    assert language.explanations["language"] == "es"
    assert language.explanations["name"] == "Spanish"
    assert language.explanations["not_scored"] == ["warmth"]
    assert "warmth" not in scores
    assert scores["politeness"].explanations["polite"]["gratitude"][0]["text"] == "Gracias"
    assert [h["text"] for h in scores["formality"].explanations["formal"]] == [
        "Le informamos"]
    assert scores["formality"].value == pytest.approx(2 / 3)  # (1 + 1) / (1 + 0 + 2)
    assert scores["readability"].explanations["formula"] == "crawford"
    tone = scores["brand_tone"].explanations
    assert tone["not_scored"] == {"warmth": "language"}
    assert set(tone["weights"]) == {"formality", "politeness", "readability", "length",
                                    "emoji", "greeting_signoff", "phrases"}


@pytest.mark.django_db
def test_a_japanese_customer_message_is_marked_done_without_a_tone_number(brisa):
    m = record("お待たせしました。荷物はまだ届きません。", direction="inbound",
               author_kind="customer")
    assert message_ids_to_score(tone=scorer_set_current()) == [m.pk]
    messages_score(message_ids=[m.pk])
    scores = scores_of(m)
    assert set(scores) == {"language"}
    assert scores["language"].explanations["not_scored"] == ["frustration", "warmth"]
    # The language row marks it scored: the catch-up sweep does not queue it again.
    assert message_ids_to_score(tone=scorer_set_current()) == []


@pytest.mark.django_db
def test_language_summary_counts_scored_and_not_scored_per_language(brisa):
    from datetime import timedelta

    from django.utils import timezone

    ids = [record(t).pk for t in (
        "Thanks for waiting! Your parcel arrives on Tuesday.",
        "Your refund is on its way and should arrive in three days.",
        "Danke für Ihre Geduld! Ihr Paket kommt am Dienstag an.",
        "Muchas gracias por esperar, su pedido llega el martes por la mañana.",
    )]
    messages_score(message_ids=ids)
    now = timezone.now()
    rows = language_summary(brand=brisa, start=now - timedelta(days=1),
                            end=now + timedelta(days=1), name="warmth", also=("formality",))
    assert [(r["language"], r["messages"], r["scored"], r["not_scored"]) for r in rows] == [
        ("en", 2, 2, 0), ("de", 1, 1, 0), ("es", 1, 0, 1)]  # no Spanish warmth
    warmth = dict(Score.objects.filter(name="warmth").values_list("message_id", "value"))
    assert rows[0]["mean"] == pytest.approx((warmth[ids[0]] + warmth[ids[1]]) / 2, abs=1e-4)
    assert rows[1]["name"] == "German" and rows[1]["mean"] == pytest.approx(
        warmth[ids[2]], abs=1e-4)
    assert rows[2]["name"] == "Spanish" and rows[2]["mean"] is None
    # Formality is scored in Spanish: its mean is there beside the missing warmth.
    assert rows[2]["also"]["formality"] == pytest.approx(
        Score.objects.get(name="formality", message_id=ids[3]).value, abs=1e-4)
