"""The brand voice the scoring tests measure against (Brisa Home, the demo's brand)."""

from typing import Any

from scoring.models import BrandVoice

BRISA: dict[str, Any] = {
    "name": "brisa",
    "display_name": "Brisa Home",
    "brand_names": ["Brisa Home"],
    "business_addresses": ["+14155550100", "whatsapp:+14155550100", "support@brisa-home.example"],
    "formality_min": 0.45,
    "formality_max": 0.9,
    "warmth_min": 0.55,
    "warmth_max": 1.0,
    "max_reading_grade": 8.0,
    "length_limits": {"sms": {"max_segments": 2}, "whatsapp": {"max_chars": 1000},
                      "web": {"max_chars": 600}, "email": {"max_chars": 4000}},
    "emoji_max": {"sms": 0, "email": 0, "whatsapp": 2, "web": 1},
    "greetings": {"email": ["Hi", "Hello", "Dear"]},
    "signoffs": {"email": ["Kind regards", "Best regards", "Warm regards"]},
    "banned_phrases": ["calm down", "per my last email", "that's not our problem"],
    "required_phrases": {"email": ["Brisa Home"]},
    "first_person": "we",
    "exemplars": [
        "Hi Maria, thanks for getting in touch! We've rebooked your delivery for Tuesday.",
        "We're sorry your sofa arrived damaged. We'll send a replacement this week.",
        "Thanks for your patience. Your refund is on its way and should arrive in 3 days.",
    ],
    "tone_threshold": 70,
    "critical_rules": ["banned_phrase", "brand_spelling"],
    "allowed_contacts": ["+18005550199", "returns@brisa-home.example"],
}


def brisa_brand(**overrides: Any) -> BrandVoice:
    """An unsaved BrandVoice (scorers need no database)."""
    return BrandVoice(**{**BRISA, **overrides})
