"""The scoring admin pages render, and a brand voice can be created there."""

import pytest

from scoring.models import BrandVoice

pytestmark = pytest.mark.django_db


def test_brand_voice_admin_add_and_lists(admin_client):
    response = admin_client.post("/admin/scoring/brandvoice/add/", {
        "name": "nube", "display_name": "Nube", "business_addresses": '["+14155550999"]',
        "brand_names": '["Nube"]', "formality_min": "0.4", "formality_max": "0.9",
        "warmth_min": "0.5", "warmth_max": "1", "max_reading_grade": "8",
        "length_limits": '{"sms": {"max_segments": 1}}', "emoji_max": '{"sms": 0}',
        "greetings": "{}", "signoffs": '{"email": ["Cheers"]}', "banned_phrases": "[]",
        "required_phrases": "{}", "first_person": "we", "critical_rules": '["banned_phrase"]',
        "tone_threshold": "65", "allowed_contacts": "[]", "exemplars": '["Hi there!"]',
        # Liked and disliked example replies, uploaded inline (what brand_fit learns from).
        "examples-TOTAL_FORMS": "2", "examples-INITIAL_FORMS": "0",
        "examples-MIN_NUM_FORMS": "0", "examples-MAX_NUM_FORMS": "1000",
        "examples-0-text": "Thanks so much, we're on it!", "examples-0-liked": "on",
        "examples-0-channel": "web",
        "examples-1-text": "Ticket closed.", "examples-1-channel": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    brand = BrandVoice.objects.get(name="nube")
    assert brand.length_limits == {"sms": {"max_segments": 1}}
    assert brand.signoffs == {"email": ["Cheers"]}
    assert sorted(brand.examples.values_list("text", "liked")) == [
        ("Thanks so much, we're on it!", True), ("Ticket closed.", False)]
    # Two examples are too few to calibrate: the action says why instead of failing.
    response = admin_client.post("/admin/scoring/brandvoice/", {
        "action": "calibrate", "_selected_action": [brand.pk]}, follow=True)
    page = response.content.decode()
    assert "brand fit not fitted" in page and "needs at least 20" in page
    assert "QA weights not fitted" in page
    for path in ("/admin/scoring/brandvoice/", f"/admin/scoring/brandvoice/{brand.pk}/change/",
                 "/admin/scoring/score/", "/admin/scoring/scoredaily/",
                 "/admin/scoring/conversationbrand/", "/admin/scoring/brandcalibration/"):
        assert admin_client.get(path).status_code == 200, path
