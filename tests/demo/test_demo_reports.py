"""After `seed_demo` (what `make run` shows), every report page has figures: NPS, revenue
in three currencies, teams, two AI releases to compare, QA results per model; and a second
run adds nothing."""

import re
from html import unescape
from io import StringIO

import pytest
from django.core.management import call_command

from conversations.models import AIStep, Conversation, Outcome, RawEvent
from demo.outcomes import REPORT_JOURNEYS
from handoffs.models import Handoff
from tests.support.roles import user_in

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    assert response.status_code == 200
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def _tile(text: str, label: str) -> str:
    found = re.search(rf"{re.escape(label)} (\S+)", text)
    assert found, label
    return found.group(1)


def test_the_demo_fills_every_report(client):
    call_command("seed_demo", stdout=StringIO())
    reports = Conversation.objects.filter(keys__key__startswith="events:web-report-")
    assert reports.count() == len(REPORT_JOURNEYS)
    assert not RawEvent.objects.filter(dedupe_key__startswith="webhook:demo-web-report-") \
        .exclude(status="processed").exists()
    outcomes = Outcome.objects.filter(conversation__in=reports)
    assert set(outcomes.exclude(revenue_currency="").values_list("revenue_currency", flat=True)) \
        == {"EUR", "USD", "GBP"}
    assert outcomes.filter(nps__isnull=False).count() == len(REPORT_JOURNEYS)
    assert set(AIStep.objects.filter(conversation__in=reports).values_list(
        "response_model", flat=True)) == {"gpt-4.1", "gpt-4.1-mini"}
    assert Handoff.objects.filter(conversation__in=reports).exclude(team="").values(
        "team").distinct().count() == 4

    c = client
    c.force_login(user_in("manager", "demo-manager"))
    text = _text(c.get("/reports/?days=30"))
    for label in ("Resolution rate", "Contained (deflected)", "Escalation rate",
                  "Repeat contact", "CSAT", "NPS"):
        assert _tile(text, label) != "—", label
    assert re.search(r"[\d,]+\.\d\d EUR · [\d,]+\.\d\d GBP · [\d,]+\.\d\d USD", text)
    teams = _text(c.get("/reports/per/team/?days=30"))
    for team in ("Sales", "Warranty", "Tier 1 EN", "Tier 2 DE"):
        assert team in teams
    compare = _text(c.get("/reports/compare/?days=30&kind=model&a=gpt-4.1&b=gpt-4.1-mini"))
    assert "Model gpt-4.1 vs Model gpt-4.1-mini" in compare
    assert "Fisher's exact test" in compare
    prompts = _text(c.get("/reports/compare/?days=30&kind=prompt&a=v13&b=v14"))
    assert "Prompt v13 vs Prompt v14" in prompts
    qa = _text(c.get("/reports/qa/?days=30"))
    assert _tile(qa, "Pass rate") != "—"

    before = (RawEvent.objects.count(), Outcome.objects.count(), AIStep.objects.count())
    call_command("seed_demo", stdout=StringIO())
    assert before == (RawEvent.objects.count(), Outcome.objects.count(), AIStep.objects.count())
