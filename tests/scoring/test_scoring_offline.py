"""The scorers run from installed wheels alone: scored in a fresh interpreter whose sockets
refuse every connection (and record any attempt), with the Hugging Face offline switches
NOT set by the caller. Exemplar similarity (the embeddings extra, installed by make test)
is checked the same way, and through the scoring service."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conversations.events import MessageEvent
from conversations.services import message_record
from scoring.embeddings import ExemplarSimilarity, embeddings_available
from scoring.models import BrandVoice, Score
from scoring.scorers import ScoringInput
from scoring.services import messages_score
from tests.support.scoring_brand import BRISA, brisa_brand

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[1:] if args and isinstance(args[0], socket.socket) else args))
    raise OSError("network disabled for this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

import django
django.setup()
from scoring.scorer_set import DEFAULT_SCORERS
from scoring.scorers import ScoringInput
from scoring.embeddings import ExemplarSimilarity
from scoring.language import language_detect
from scoring.tone import Frustration
from tests.support.scoring_brand import brisa_brand

brand = brisa_brand()
items = [
    ScoringInput("Thanks so much for your patience! We have rebooked your delivery.",
                 "whatsapp", "ai", brand),
    ScoringInput("hey lol calm down 😂", "sms", "ai", brand),
]
out = {s.name: [r.value for r in s.score_batch(items)] for s in (*DEFAULT_SCORERS, Frustration())}
out["language"] = [language_detect(t)[0] for t in ("Quero falar com um atendente humano",
                                                   "Ich möchte mit einem Menschen sprechen")]
if "--embeddings" in sys.argv:
    out["exemplar_similarity"] = [r.value for r in ExemplarSimilarity().score_batch(items)]
print(json.dumps({"scores": out, "attempts": attempts}))
'''


def run_offline(tmp_path, *args):
    env = {k: v for k, v in os.environ.items()
           if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", HANDOFF_AUDITOR_DATA_DIR=str(tmp_path),
               HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_default_scorers_run_with_the_network_unavailable(tmp_path):
    result = run_offline(tmp_path)
    assert result["attempts"] == []
    scores = result["scores"]
    assert set(scores) == {"formality", "warmth", "politeness", "readability", "length",
                           "emoji", "greeting_signoff", "phrases", "frustration", "language"}
    assert scores["warmth"][0] > 0.5              # the learned model, read from the package
    assert scores["frustration"][0] < 0.5
    assert scores["language"] == ["pt", "de"]
    assert scores["emoji"] == [1.0, 0.5]          # one emoji on SMS, where none are allowed
    assert scores["phrases"][1] < 1.0             # "calm down" is banned


def test_embeddings_extra_is_installed_for_the_suite():
    assert embeddings_available(), "make test installs .[dev,embeddings]"


def test_exemplar_similarity_runs_with_the_network_unavailable(tmp_path):
    result = run_offline(tmp_path, "--embeddings")
    assert result["attempts"] == []
    on_brand, off_brand = result["scores"]["exemplar_similarity"]
    assert on_brand > 0.6
    assert off_brand < on_brand - 0.2


def test_exemplar_similarity_batches_and_skips_brands_without_exemplars():
    brand = brisa_brand()
    bare = brisa_brand(name="bare", exemplars=[])
    items = [
        ScoringInput("We're sorry your table arrived damaged. We'll send a new one this week.",
                     "email", "ai", brand),
        ScoringInput("Refund initiated. Reference 88812.", "sms", "ai", brand),
        ScoringInput("We're sorry your table arrived damaged.", "web", "ai", bare),
    ]
    first, second, third = ExemplarSimilarity().score_batch(items)
    assert first.explanations["best_exemplar"] == 1    # the damaged-sofa exemplar
    assert first.value > second.value
    assert third is None


@pytest.mark.django_db
def test_scoring_service_adds_exemplar_similarity_when_enabled(settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "SCORING_EMBEDDINGS": True}
    BrandVoice.objects.create(**BRISA, is_default=True)
    from django.utils import timezone

    m = message_record(event=MessageEvent(
        channel="whatsapp", direction="outbound", author_kind="ai", provider="twilio",
        provider_message_id="SMemb", business_address="whatsapp:+14155550100",
        customer_address="whatsapp:+12125550147", occurred_at=timezone.now(),
        body="Thanks for your patience. Your refund is on its way and arrives in 3 days.",
    ))
    messages_score(message_ids=[m.pk])
    sim = Score.objects.get(message=m, name="exemplar_similarity")
    assert sim.author == "exemplar_similarity@1" and sim.value > 0.8
    tone = Score.objects.get(message=m, name="brand_tone")
    assert "exemplar_similarity" in tone.explanations["weights"]
