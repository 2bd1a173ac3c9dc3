"""After `seed_demo` (what `make run` shows), every report page has figures: NPS, revenue
in three currencies, teams, two AI releases to compare, QA results per model; and a second
run adds nothing."""

import re
from html import unescape
from io import StringIO

import pytest
from django.core.management import call_command

from audit.outcome_rules import outcome_filter
from conversations.models import AIStep, Conversation, Outcome, RawEvent
from demo.outcomes import REPORT_JOURNEYS, returns
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


def test_the_demos_returning_visitors_are_repeat_contacts(client):
    """A returning web-chat visitor is identified (one customer) and their next chat is a new
    conversation, so the outcomes page counts the earlier chat as a repeat contact and its
    link lists exactly those conversations."""
    call_command("seed_demo", stdout=StringIO())
    by_key = {k: c for c in Conversation.objects.filter(
        keys__key__startswith="events:web-report-").prefetch_related("keys")
        for k in c.keys.values_list("key", flat=True)}
    assert len(by_key) == len(REPORT_JOURNEYS) == len(set(by_key.values()))
    pairs = [(by_key[f"events:web-report-{i - 2:02d}"], by_key[f"events:web-report-{i:02d}"])
             for i in range(len(REPORT_JOURNEYS)) if returns(i)]
    assert pairs
    for first, again in pairs:
        assert first.customer_id is not None and first.customer_id == again.customer_id
        assert first.customer_address == again.customer_address
        assert first.closed_at is not None and again.started_at > first.closed_at
    reports = Conversation.objects.filter(pk__in=[c.pk for c in by_key.values()])
    assert set(outcome_filter(reports, "repeat")) == {first for first, _ in pairs}

    client.force_login(user_in("manager", "demo-manager"))
    page = client.get("/reports/?days=30")
    text = _text(page)
    came_back = re.search(r"Repeat contact \S+ (\d+) of (\d+) came back", text)
    assert came_back, "Repeat contact tile"
    repeats = int(came_back.group(1))
    assert repeats >= len(pairs)
    href = unescape(re.search(r'href="([^"]*outcome=repeat[^"]*)"',
                              page.content.decode()).group(1))
    listed = re.findall(r"<tr data-conversation=", client.get(href).content.decode())
    assert len(listed) == repeats
