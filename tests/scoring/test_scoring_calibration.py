"""Calibration to one brand, on PostgreSQL: brand_fit learns from 20-100 liked/disliked
example replies (uploaded through the API, which refuses bad uploads with a JSON reason),
and the brand's weights are fitted to its QA reviewers' brand-tone answers, with the
auto-vs-human correlation before and after (leave-one-out)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from conversations.models import AuthorKind
from scoring.calibration import CalibrationError, brand_fit_train, brand_qa_calibrate
from scoring.models import BrandCalibration, BrandExample, BrandVoice, Score
from scoring.qa import SCORE_PREFIX
from scoring.services import messages_score
from tests.scoring.test_scoring_services import record, scores_of
from tests.support.roles import token_for
from tests.support.scoring_brand import BRISA

pytestmark = pytest.mark.django_db

LIKED = [
    "Thanks so much for your patience! We've rebooked your delivery for Tuesday.",
    "We're really sorry about the wait. Your refund is on its way today.",
    "Thank you for letting us know. We'll send a replacement lamp this week.",
    "Happy to help! Your order ships tomorrow and we'll text you the tracking.",
    "We completely understand, and we're sorry. A courier will collect it on Friday.",
    "Thanks for getting in touch! We've updated your address for order 4411.",
    "We're glad you asked. Your sofa arrives on Monday between 9 and 12.",
    "Sorry to hear the box was damaged. We'll refund the shipping right away.",
    "Thank you! We've applied your discount and sent a new confirmation.",
    "We appreciate your patience. Your parcel left our warehouse this morning.",
    "Thanks for waiting. We're happy to move your delivery to Saturday.",
    "We understand how frustrating this is. We'll call you back within the hour.",
    "Thank you for your order! We'll let you know as soon as it ships.",
    "We're sorry for the mix-up. The right colour is on its way to you now.",
    "Great news: your refund has been approved. Thanks for bearing with us.",
]
DISLIKED = [
    "Order 4411 status: shipped.",
    "As stated, delivery is Tuesday. Read the confirmation email.",
    "You need to provide the order number. We cannot proceed otherwise.",
    "Refund denied. Policy section 4.2 applies.",
    "That is not possible. Returns after 30 days are not accepted.",
    "You should have checked the size before ordering.",
    "Address change not allowed after dispatch.",
    "Whatever, the courier will come when they come.",
    "No. The discount expired yesterday.",
    "Your complaint has been logged. Reference 88812.",
    "As I already said, the parcel is with the courier.",
    "Stop messaging, the ticket is closed.",
    "Invalid request. Contact the carrier directly.",
    "Delivery window: 9-12. No changes possible.",
    "The item is out of stock. Nothing we can do.",
]


@pytest.fixture
def brisa(db):
    return BrandVoice.objects.create(**BRISA, is_default=True)


def examples(liked=LIKED, disliked=DISLIKED):
    return ([{"text": t, "liked": True, "channel": "whatsapp"} for t in liked]
            + [{"text": t, "liked": False} for t in disliked])


def test_brand_fit_learns_the_examples_and_scores_new_replies(brisa):
    from scoring.calibration import brand_examples_add

    brand_examples_add(brand=brisa, examples=examples())
    calibration = brand_fit_train(brand=brisa)
    assert calibration.fit_examples == 30
    # Judged on examples it was not fitted on (5-fold), not on its own training data.
    assert calibration.fit_cv_auc >= 0.8
    warm = record("Thanks for your patience! We're sorry about the delay and we'll ship it "
                  "today.", channel="whatsapp")
    cold = record("Refund denied. Read the policy.", channel="whatsapp")
    messages_score(message_ids=[warm.pk, cold.pk])
    fit_warm, fit_cold = scores_of(warm)["brand_fit"], scores_of(cold)["brand_fit"]
    assert fit_warm.value > 0.7 > 0.3 > fit_cold.value
    assert fit_warm.author == "brand_fit@1"
    # What moved it: features and the brand's own words.
    assert set(fit_warm.explanations["features"]) >= {"warmth", "politeness", "words"}
    assert {w["text"].lower() for w in fit_warm.explanations["words"]} & {"thanks", "sorry",
                                                                          "we're"}
    assert "brand_fit" in scores_of(warm)["brand_tone"].explanations["weights"]


def test_brand_fit_needs_enough_examples_of_each_kind(brisa):
    from scoring.calibration import brand_examples_add

    brand_examples_add(brand=brisa, examples=examples(LIKED, DISLIKED[:3]))
    with pytest.raises(CalibrationError, match="15 liked and 3 disliked"):
        brand_fit_train(brand=brisa)
    assert not BrandCalibration.objects.exists()


def _reviewed(brisa, texts_and_answers, channel="web"):
    """One conversation per (reply, reviewer's 1-5 brand-tone answer), scored, with the
    answer stored as the QA app stores it (a human Score, 0-1)."""
    for i, (text, answer) in enumerate(texts_and_answers):
        m = record(text, channel=channel, customer=f"+1212555{i:04d}")
        messages_score(message_ids=[m.pk])
        Score.objects.create(
            subject_type=Score.SubjectType.CONVERSATION, subject_id=m.conversation_id,
            conversation_id=m.conversation_id, brand=brisa, name=f"{SCORE_PREFIX}brand_tone",
            value=(answer - 1) / 4, source=Score.Source.HUMAN, author=f"reviewer{i % 2}",
            channel=channel, author_kind=AuthorKind.HUMAN,
            occurred_at=timezone.now() - timedelta(hours=1))


def test_qa_calibration_fits_weights_to_reviewers_and_reports_r_before_and_after(brisa):
    # These reviewers judge a web reply's brand tone by its length above all (the brand's
    # web limit is 600 characters): what the default weights give only 0.15.
    padding = " Our team checks every order twice before it leaves the warehouse."
    cases = []
    for i in range(16):
        base = (LIKED if i % 2 else DISLIKED)[i % 15]
        text = base + padding * (i % 8) * 3
        answer = 5 if len(text) <= 600 else 3 if len(text) <= 1000 else 1
        cases.append((text, answer))
    _reviewed(brisa, cases)
    calibration = brand_qa_calibrate(brand=brisa, default_weights=_default_weights())
    assert calibration.qa_conversations == 16
    # After: each conversation predicted by weights fitted on the other 15.
    assert calibration.qa_r_after > calibration.qa_r_before + 0.1
    assert calibration.qa_r_after >= 0.8
    weights = calibration.qa_weights
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert max(weights, key=weights.get) == "length"
    # Scored again, the brand's replies use its weights.
    m = record("Thanks so much! We're happy to help.", channel="web", customer="+12125559999")
    messages_score(message_ids=[m.pk])
    tone = scores_of(m)["brand_tone"].explanations
    assert tone["calibrated"] is True
    assert tone["weights"]["length"] == pytest.approx(
        weights["length"] / sum(weights[n] for n in tone["weights"] if n in weights), abs=1e-3)


def _default_weights():
    from conversations.conf import auditor_settings

    return auditor_settings.SCORING_WEIGHTS


def test_qa_calibration_needs_ten_reviewed_conversations(brisa):
    _reviewed(brisa, [(LIKED[0], 5), (DISLIKED[0], 1)])
    with pytest.raises(CalibrationError, match="2 reviewed conversations"):
        brand_qa_calibrate(brand=brisa, default_weights=_default_weights())


# --- the API -----------------------------------------------------------------------------


def api(role):
    return Client(headers={"Authorization": f"Token {token_for(role)}"})


def test_api_upload_trains_brand_fit_for_a_manager(brisa):
    url = f"/api/brands/{brisa.pk}/examples/"
    r = api("manager").post(url, {"examples": examples()}, content_type="application/json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["added"] == 30 and body["examples"] == 30 and body["not_trained"] is None
    assert body["calibration"]["brand_fit_cv_auc"] >= 0.8
    listed = api("viewer").get(url).json()
    assert len(listed) == 30 and {e["liked"] for e in listed} == {True, False}
    got = api("viewer").get(f"/api/brands/{brisa.pk}/calibration/").json()
    assert got["examples"] == 30


def test_api_upload_with_too_few_examples_stores_them_and_says_why_not_trained(brisa):
    r = api("manager").post(f"/api/brands/{brisa.pk}/examples/",
                            {"examples": examples(LIKED[:5], DISLIKED[:5])},
                            content_type="application/json")
    assert r.status_code == 201
    assert r.json()["calibration"] is None
    assert "needs at least 20" in r.json()["not_trained"]
    assert BrandExample.objects.count() == 10


@pytest.mark.parametrize(("payload", "field"), [
    ({"examples": []}, "examples"),
    ({"examples": [{"text": "hi"}]}, "examples"),
    ({"examples": [{"text": "hi", "liked": True, "channel": "fax"}]}, "examples"),
    ({"examples": [{"text": f"reply {i}", "liked": True} for i in range(101)]}, "examples"),
    ({}, "examples"),
])
def test_api_refuses_bad_uploads_with_a_reason(brisa, payload, field):
    r = api("manager").post(f"/api/brands/{brisa.pk}/examples/", payload,
                            content_type="application/json")
    assert r.status_code == 400
    assert field in r.json()
    assert not BrandExample.objects.exists()


def test_api_calibration_is_for_leads_and_says_why_it_cannot_fit(brisa):
    for role in ("viewer", "qa_reviewer"):
        r = api(role).post(f"/api/brands/{brisa.pk}/examples/", {"examples": examples()},
                           content_type="application/json")
        assert r.status_code == 403 and "lead_qa" in r.json()["detail"]
    r = api("manager").post(f"/api/brands/{brisa.pk}/calibration/")
    assert r.status_code == 400
    assert "reviewed conversations" in r.json()["detail"]
    assert api("manager").get(f"/api/brands/{brisa.pk}/calibration/").status_code == 404
    assert api("manager").get("/api/brands/999999/examples/").status_code == 404
