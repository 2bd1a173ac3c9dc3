"""QA results on hand-worked reviews of the week (tests/audit/outcome_data.py): the figures,
their denominators, a superseded review left out, labels in people's words, and every
number's drill-down opening the inbox (page and API) on exactly the conversations the
number counts."""

import re
from html import unescape

import pytest
from django.contrib.auth.models import User

from audit.rollups import rollups_refresh
from scoring.qa import (
    DEFAULT_CATEGORIES,
    answer_fails,
    review_submit,
    scorecard_create,
    scorecard_edit,
)
from scoring.qa import scorecard_default_ensure as default_card
from scoring.qa_counted import answer_fails_q, answers_counted
from tests.support.roles import token_for

pytestmark = pytest.mark.django_db

PASSING = {"greeting": 1, "empathy": 4, "brand_tone": 4, "solution_offered": 1,
           "handoff_needed": 0, "handoff_on_time": {"na": True}, "accuracy": 1, "closing": 1}


def _answers(**changed) -> dict:
    return {k: v if isinstance(v, dict) else {"value": v}
            for k, v in {**PASSING, **changed}.items()}


@pytest.fixture
def reviewed(week):
    """rita: B fails (accuracy, critical: no); D failed on version 1, then passed on
    version 2 (only the latest counts); C on the sales scorecard (upsell: no, not
    critical). sam: B passes; A passes with empathy 2 of 5 (a failing answer), and A on
    the sales scorecard (upsell: yes): a review per scorecard counts."""
    rita, sam = User.objects.create(username="rita"), User.objects.create(username="sam")
    v1 = default_card()
    review_submit(reviewer=rita, conversation=week["conv-b"], version=v1,
                  answers=_answers(accuracy=0))
    review_submit(reviewer=rita, conversation=week["conv-d"], version=v1,
                  answers=_answers(accuracy=0))
    v2 = scorecard_edit(scorecard=v1.scorecard, categories=DEFAULT_CATEGORIES, note="v2")
    review_submit(reviewer=rita, conversation=week["conv-d"], version=v2, answers=_answers())
    review_submit(reviewer=sam, conversation=week["conv-b"], version=v1, answers=_answers())
    review_submit(reviewer=sam, conversation=week["conv-a"], version=v1,
                  answers=_answers(empathy=2))
    sales = scorecard_create(key="sales", name="Sales check", categories=[
        {"key": "upsell", "label": "Offered the matching accessory", "scale": "yes_no"}])
    review_submit(reviewer=rita, conversation=week["conv-c"], version=sales,
                  answers={"upsell": {"value": 0}})
    review_submit(reviewer=sam, conversation=week["conv-a"], version=sales,
                  answers={"upsell": {"value": 1}})
    rollups_refresh()
    return week


def _text(response) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def _links(body: str) -> list[tuple[str, int, str]]:
    """(href, data-count, text) of every counted link."""
    return [(unescape(href), int(count), re.sub(r"<[^>]+>", "", text).strip())
            for href, count, text in re.findall(
                r'<a (?:class="tile" )?href="([^"]+)" data-count="(\d+)">(.*?)</a>', body,
                flags=re.S)]


def test_qa_figures_are_the_hand_worked_ones(reviewed, as_role):
    text = _text(as_role("manager").get("/reports/qa/?days=7"))
    # Counted: rita B (failed), rita D v2, sam B, sam A (default); rita C, sam A (sales).
    assert "Reviews 6 4 conversations reviewed" in text
    assert "Pass rate 83% 5 of 6 reviews passed" in text
    assert "Critical failures 1 failing answers in critical categories, in 1 conversations" \
        in text
    assert "Default scorecard 75% 3 of 4 reviews passed" in text
    assert "Sales check 100% 2 of 2 reviews passed" in text
    # Empathy: 4 answers (A's 2 of 5 fails), upsell: 2 answers (C's no fails).
    assert "Empathy Default scorecard 75% 3 of 4 answers passed" in text
    assert "Offered the matching accessory Sales check 50% 1 of 2 answers passed" in text
    assert "Accuracy / no hallucination Default scorecard · critical 75% 3 of 4" in text
    # "Handoff needed?" (weight 0) records an answer: its "no" fails nothing.
    assert "Handoff needed? Default scorecard — recorded, not scored: 4 answers" in text
    weakest = text.split("Weakest categories", 1)[1].split("Per category", 1)[0]
    assert "Handoff needed?" not in weakest and "Empathy" in weakest
    # The critical failure in words; pairs and categories by their labels.
    assert re.search(r"#\d+ Accuracy / no hallucination No", text)
    assert "Warmth (automated) vs Empathy (reviewers)" in text
    assert "default:" not in text and "→" not in text
    assert "Maya Diaz agent-7 50% 1 of 2 reviews passed" in text  # B's two reviews
    # The group pages count the same reviews (from the rollups): gpt-4.1 has A's two
    # (one per scorecard) and D's latest; gpt-4.1-mini B's two.
    models = _text(as_role("manager").get("/reports/per/model/?days=7"))
    assert "3 reviews, 0 failed" in models and "2 reviews, 1 failed" in models


def test_every_qa_drilldown_lists_exactly_the_conversations_counted(reviewed, as_role):
    c = as_role("manager")
    links = _links(c.get("/reports/qa/?days=7").content.decode())
    assert len(links) > 20
    expected = {
        "Reviews": 4, "Critical failures": 1,
    }
    for href, count, text in links:
        listed = c.get(href)
        assert listed.status_code == 200, href
        assert listed.content.decode().count('data-conversation="') == count, (text, href)
        for label, n in expected.items():
            if text.startswith(label):
                assert count == n, text
    failed = {(h, n) for h, n, _ in links if "qa=failed" in h and "scorecard=default" in h
              and "qa_category" not in h}
    # Only B: D's failed review was superseded by rita's later one.
    assert {n for _, n in failed} == {1}
    empathy = [n for h, n, _ in links if "qa_category=empathy" in h and "qa=failed" in h]
    assert empathy and set(empathy) == {1}
    agent = [n for h, n, _ in links if "agent=agent-7" in h and "qa=reviewed" in h]
    assert agent and set(agent) == {1}


def test_api_lists_the_same_conversations(reviewed):
    headers = {"Authorization": f"Token {token_for('viewer')}"}
    from django.test import Client

    c = Client()
    since = "dates=started&since=2026-11-16&until=2026-11-22"

    def ids(query: str) -> set[int]:
        response = c.get(f"/api/conversations/?{since}&{query}", headers=headers)
        assert response.status_code == 200, response.content
        return {row["conversation"]["id"] for row in response.json()["results"]}

    w = reviewed
    assert ids("qa=reviewed") == {w[k].pk for k in ("conv-a", "conv-b", "conv-c", "conv-d")}
    assert ids("qa=failed") == {w["conv-b"].pk}
    assert ids("qa=critical_failed") == {w["conv-b"].pk}
    assert ids("qa=failed&qa_category=empathy") == {w["conv-a"].pk}
    assert ids("qa=passed&scorecard=sales") == {w["conv-a"].pk, w["conv-c"].pk}
    assert ids("qa=failed&qa_category=upsell") == {w["conv-c"].pk}
    bad = c.get(f"/api/conversations/?{since}&qa=nope", headers=headers)
    assert bad.status_code == 400 and "qa" in bad.json()


def test_the_failing_answer_filter_is_answer_fails(reviewed):
    """The one rule, as a filter and in Python, agree on every stored answer."""
    rows = answers_counted().values_list("pk", "category__scale", "value")
    failing = set(answers_counted().filter(answer_fails_q()).values_list("pk", flat=True))
    assert failing  # A's empathy, B's accuracy, D's superseded accuracy, C's upsell
    assert failing == {pk for pk, scale, value in rows if answer_fails(scale=scale, value=value)}
