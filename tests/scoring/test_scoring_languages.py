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
def test_a_reply_in_spanish_gets_readability_but_not_english_tone(brisa):
    m = record("Gracias por esperar. Su pedido llegará el martes por la mañana.")
    messages_score(message_ids=[m.pk])
    scores = scores_of(m)
    language = scores["language"]
    assert language.author == LANGUAGE_AUTHOR
    assert language.explanations["language"] == "es"
    assert language.explanations["name"] == "Spanish"
    assert language.explanations["not_scored"] == ["formality", "politeness", "warmth"]
    assert not {"formality", "politeness", "warmth"} & set(scores)
    assert scores["readability"].explanations["formula"] == "crawford"
    tone = scores["brand_tone"].explanations
    assert tone["not_scored"] == {"formality": "language", "politeness": "language",
                                  "warmth": "language"}
    assert set(tone["weights"]) == {"readability", "length", "emoji", "greeting_signoff",
                                    "phrases"}


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
    )]
    messages_score(message_ids=ids)
    now = timezone.now()
    rows = language_summary(brand=brisa, start=now - timedelta(days=1),
                            end=now + timedelta(days=1), name="warmth")
    assert [(r["language"], r["messages"], r["scored"], r["not_scored"]) for r in rows] == [
        ("en", 2, 2, 0), ("de", 1, 0, 1)]  # German replies have no warmth
    assert rows[0]["mean"] == pytest.approx(abs=1e-4, expected=
        sum(Score.objects.filter(name="warmth").values_list("value", flat=True)) / 2)
    assert rows[1]["name"] == "German" and rows[1]["mean"] is None
