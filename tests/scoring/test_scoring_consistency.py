"""Daily aggregates, the consistency index across channels, and EWMA drift -> tone_drift."""

from datetime import UTC, datetime, timedelta

import pytest

from conversations.events import MessageEvent
from conversations.models import Flag
from conversations.services import message_record
from scoring.models import BrandVoice, Score, ScoreDaily
from scoring.selectors import channel_summary, daily_series
from scoring.services import (
    messages_score,
    scores_daily_refresh,
    scores_daily_roll,
    tone_drift_detect,
)
from scoring.stats import consistency_index, ewma_drift
from tests.support.scoring_brand import BRISA

TODAY = datetime(2026, 11, 20, tzinfo=UTC).date()
ON_BRAND = ["Thanks for waiting! Your order {} ships today.",
            "Thank you for your patience. Order {} is on its way."]
OFF_BRAND = ["hey lol ur order {} is gonna be late, not our problem tbh!!",
             "ugh. order {} is late. calm down."]
_seq = iter(range(10**6))


def test_consistency_index_math():
    assert consistency_index([0.8, 0.8, 0.8]) == pytest.approx(1.0)
    assert consistency_index([0.0, 1.0]) == 0.0
    assert consistency_index([0.7, 0.9]) == pytest.approx(0.8)   # SD 0.1 -> 1 - 0.1/0.5
    assert consistency_index([0.9]) is None


def test_ewma_drift_math():
    baseline = [0.80, 0.82, 0.78, 0.81, 0.79]          # mean 0.8, SD ~0.0141 -> floor 0.02
    flat = ewma_drift(baseline=baseline, recent=[0.80, 0.79], lam=0.3, limit=3,
                      min_sigma=0.02)
    assert flat["drift"] is False and flat["baseline_sd"] == 0.02
    drop = ewma_drift(baseline=baseline, recent=[0.6, 0.6, 0.6], lam=0.3, limit=3,
                      min_sigma=0.02)
    # z = 0.8 + (0.6 - 0.8)(1 - 0.7^3) = 0.6686; limit 3 * 0.02 * sqrt(0.3/1.7) = 0.0252
    assert drop["ewma"] == pytest.approx(0.6686, abs=1e-4)
    assert drop["control_limit"] == pytest.approx(0.0252, abs=1e-4)
    assert drop["drift"] is True and drop["direction"] == "down"
    assert ewma_drift(baseline=baseline[:4], recent=[0.1], lam=0.3, limit=3,
                      min_sigma=0.02) is None            # too little baseline


def record(body, *, channel, day, author_kind="ai"):
    customer, business = "+12125550147", "+14155550100"
    if channel == "whatsapp":
        customer, business = f"whatsapp:{customer}", f"whatsapp:{business}"
    n = next(_seq)
    return message_record(event=MessageEvent(
        channel=channel, direction="outbound", author_kind=author_kind, provider="twilio",
        provider_message_id=f"SMd{n:06d}", business_address=business,
        customer_address=customer, body=body.format(n),
        occurred_at=datetime(day.year, day.month, day.day, 12, n % 60, tzinfo=UTC),
    ))


@pytest.fixture
def history(db, settings):
    """10 baseline days on SMS and WhatsApp, then 3 recent days in which SMS goes off brand."""
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "DRIFT_BASELINE_DAYS": 10,
                                "DRIFT_RECENT_DAYS": 3, "DRIFT_MIN_DAILY_COUNT": 2}
    brand = BrandVoice.objects.create(**BRISA, is_default=True)
    ids = []
    for back in range(12, -1, -1):
        day = TODAY - timedelta(days=back)
        for channel in ("sms", "whatsapp"):
            texts = OFF_BRAND if (channel == "sms" and back < 3) else ON_BRAND
            ids += [record(t, channel=channel, day=day).pk for t in texts]
        ids.append(record("Hi, on it now.", channel="sms", day=day, author_kind="human").pk)
    messages_score(message_ids=ids)
    for back in range(13):
        scores_daily_refresh(day=TODAY - timedelta(days=back))
    return brand


def test_daily_aggregates_per_channel_and_author_kind(history):
    day = TODAY - timedelta(days=5)
    row = ScoreDaily.objects.get(day=day, channel="sms", author_kind="ai", name="brand_tone")
    values = list(Score.objects.filter(channel="sms", author_kind="ai", name="brand_tone",
                                       occurred_at__date=day).values_list("value", flat=True))
    assert row.count == 2 == len(values)
    assert row.mean == pytest.approx(sum(values) / 2)
    assert row.stddev == pytest.approx(abs(values[0] - values[1]) / 2)
    assert ScoreDaily.objects.filter(day=day, channel="sms", author_kind="human").exists()
    # Every dimension is aggregated, and a refresh is idempotent.
    assert set(ScoreDaily.objects.filter(day=day).values_list("name", flat=True)) >= {
        "formality", "warmth", "readability", "length", "emoji", "greeting_signoff",
        "phrases", "brand_tone"}
    before = ScoreDaily.objects.filter(day=day).count()
    scores_daily_refresh(day=day)
    assert ScoreDaily.objects.filter(day=day).count() == before


def test_consistency_index_across_channels(history):
    calm = channel_summary(brand=history, start=TODAY - timedelta(days=12),
                           end=TODAY - timedelta(days=3), author_kind="ai")
    recent = channel_summary(brand=history, start=TODAY - timedelta(days=2), end=TODAY,
                             author_kind="ai")
    assert set(calm["per_channel"]) == {"sms", "whatsapp"}
    assert calm["per_channel"]["sms"]["count"] == 20
    assert calm["consistency_index"] > 0.9
    assert recent["consistency_index"] < calm["consistency_index"] - 0.05
    assert recent["per_channel"]["sms"]["mean"] < recent["per_channel"]["whatsapp"]["mean"]
    assert len(daily_series(brand=history, start=TODAY, end=TODAY)) == 3  # sms ai+human, wa
    both = channel_summary(brand=history, start=TODAY - timedelta(days=12), end=TODAY)
    assert set(both["channels"]["sms"]) == {"ai", "human"}
    assert both["per_channel"]["sms"]["count"] == 26 + 13  # 2 AI + 1 human a day


def test_channel_summary_leaves_customers_out_unless_asked(history):
    inbound = message_record(event=MessageEvent(
        channel="sms", direction="inbound", author_kind="customer", provider="twilio",
        provider_message_id="SMcust", business_address="+14155550100",
        customer_address="+12125550147", body="This is terrible!",
        occurred_at=datetime(TODAY.year, TODAY.month, TODAY.day, 9, tzinfo=UTC),
    ))
    messages_score(message_ids=[inbound.pk])
    scores_daily_refresh(day=TODAY)
    ours = channel_summary(brand=history, start=TODAY, end=TODAY, name="warmth")
    theirs = channel_summary(brand=history, start=TODAY, end=TODAY, name="warmth",
                             author_kind="customer")
    assert "customer" not in ours["channels"]["sms"]
    assert theirs["per_channel"]["sms"]["count"] == 1
    assert theirs["per_channel"]["sms"]["mean"] < 0.3


def test_drift_on_sms_raises_one_tone_drift_flag_with_figures(history):
    flags = tone_drift_detect(today=TODAY)
    assert len(flags) == 1
    flag = flags[0]
    ev = flag.evidence
    assert (ev["channel"], ev["author_kind"], ev["dimension"]) == ("sms", "ai", "brand_tone")
    assert ev["drift"] is True and ev["direction"] == "down"
    assert ev["ewma"] < ev["baseline_mean"] - ev["control_limit"]
    assert len(ev["recent"]) == 3 and len(ev["baseline_days"]) == 10
    assert flag.conversation.channel == "sms"
    # Detecting again refreshes the same flag.
    assert [f.pk for f in tone_drift_detect(today=TODAY)] == [flag.pk]
    assert Flag.objects.filter(kind="tone_drift").count() == 1


def test_no_drift_before_the_change(history):
    assert tone_drift_detect(today=TODAY - timedelta(days=3)) == []


def test_daily_roll_refreshes_and_detects(history):
    result = scores_daily_roll(today=TODAY)
    assert result["aggregates"] > 0 and result["drift_flags"] == 1


def test_distribution_comparison_sees_a_spread_that_equal_means_hide():
    from scoring.stats import distribution_compare

    # Same mean (0.6), different shapes: SMS replies all at 0.6, e-mail half 0.2, half 1.0.
    values = {"sms": [0.6] * 40, "email": [0.2] * 20 + [1.0] * 20, "web": [0.6] * 5}
    out = distribution_compare(values)
    assert out["sizes"] == {"email": 40, "sms": 40, "web": 5}
    assert out["too_small"] == ["web"]
    (pair,) = out["pairs"]
    assert (pair["a"], pair["b"], pair["n_a"], pair["n_b"]) == ("email", "sms", 40, 40)
    assert pair["wasserstein"] == pytest.approx(0.4)
    assert pair["ks"] == pytest.approx(0.5) and pair["ks_p"] < 0.001
    assert out["most_apart"] == ["email", "sms"]


@pytest.mark.django_db
def test_channel_distributions_from_stored_scores():
    from django.utils import timezone

    from scoring.selectors import channel_distributions
    from tests.scoring.test_scoring_services import record as record_now

    brisa = BrandVoice.objects.create(**BRISA, is_default=True)
    ids = [record_now(t, channel=ch, customer=f"+1212555{i:04d}").pk
           for i, (t, ch) in enumerate(
               [("Thanks so much! We're happy to help.", "whatsapp")] * 25
               + [("hey lol calm down ur order is gonna be late", "sms")] * 25)]
    messages_score(message_ids=ids)
    messages_score(message_ids=ids)  # a re-run does not count a message twice
    now = timezone.now()
    out = channel_distributions(brand=brisa, start=now - timedelta(days=1),
                                end=now + timedelta(days=1))
    assert out["sizes"] == {"sms": 25, "whatsapp": 25}
    assert out["pairs"][0]["wasserstein"] > 0.1 and out["pairs"][0]["ks"] == 1.0
