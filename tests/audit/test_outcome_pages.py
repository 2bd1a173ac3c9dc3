"""The report pages, their CSV and API on the hand-worked week (tests/audit/outcome_data.py):
the figures people read, sorting, the comparison, QA results, permissions, masking for
viewers, and query counts that do not grow with the period."""

import csv
import io
import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.rollups import rollups_refresh
from scoring.qa import scorecard_default_ensure
from tests.audit.outcome_data import DAY1, TODAY

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def test_outcomes_page_shows_the_hand_worked_figures(week, as_role):
    response = as_role("manager").get("/reports/?days=7")
    assert response.status_code == 200
    text = _text(response)
    assert "Resolution rate 60% 3 of 5 conversations" in text
    assert "Contained (deflected) 20% 1 of 5" in text
    assert "Repeat contact 20% 1 of 5 came back" in text
    assert "NPS -25 1 promoters, 2 detractors of 4" in text
    assert "69.90 EUR · 100.00 USD" in text
    assert "How these figures are counted" in text
    assert "First response per day" in text and "<svg" in response.content.decode()


def test_group_pages_sort_and_link_rows_to_their_conversations(week, as_role):
    c = as_role("viewer")
    response = c.get("/reports/per/model/?days=7&sort=resolved")
    assert response.status_code == 200
    rows = re.findall(r'<tr><th scope="row"><a href="([^"]+)">([^<]+)</a>',
                      response.content.decode())
    # Resolved: gpt-4.1-mini 1 of 1 (B), gpt-4.1 2 of 3 (A, D; not A2).
    assert [name for _, name in rows] == ["gpt-4.1-mini", "gpt-4.1"]
    response = c.get("/reports/per/model/?days=7&sort=resolved&desc=0")
    rows_asc = re.findall(r'<tr><th scope="row"><a href="([^"]+)">([^<]+)</a>',
                          response.content.decode())
    assert [name for _, name in rows_asc] == ["gpt-4.1", "gpt-4.1-mini"]
    href = unescape(rows_asc[0][0])
    listed = c.get(href)
    assert listed.status_code == 200
    assert listed.content.decode().count('data-conversation="') == 3  # A, D, A2
    agent = _text(c.get("/reports/per/agent/?days=7"))
    assert "Maya Diaz" in agent and "7.0 min" in agent  # time to first reply 420 s
    assert c.get("/reports/per/nobody/").status_code == 404


def test_compare_page_puts_releases_side_by_side(week, as_role):
    response = as_role("viewer").get(
        "/reports/compare/?days=7&kind=model&a=gpt-4.1&b=gpt-4.1-mini")
    assert response.status_code == 200
    text = _text(response)
    assert "Model gpt-4.1 vs Model gpt-4.1-mini" in text
    assert "Fisher's exact test" in text and "Mann-Whitney U" in text
    assert "95% CI" in text
    day2 = DAY1 + timedelta(days=1)
    split = as_role("viewer").get(f"/reports/compare/?days=7&mode=date&split={day2}")
    assert split.status_code == 200 and "vs" in _text(split)
    bad = as_role("viewer").get("/reports/compare/?days=7&mode=date&split=1999-01-01")
    assert bad.status_code == 400


def test_report_csv_holds_every_figure(week, as_role):
    response = as_role("manager").get("/reports/report.csv?days=7")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    found = {(r[4], r[6]): r[7] for r in rows[1:]}
    assert found["total", "resolved.rate"] == "0.6"
    assert found["total", "nps.score"] == "-25.0"
    assert found["total", "revenue.EUR"] == "69.90"
    assert found["total", "repeat_contact.count"] == "1"
    assert found["total", "first_response_seconds.p50"] == "45.0"
    assert as_role("viewer").get("/reports/report.csv?days=7").status_code == 403
    bad = as_role("manager").get("/reports/report.csv?report=nope")
    assert bad.status_code == 400 and "report" in bad.json()["errors"]


def test_pages_need_a_role_and_mask_for_viewers(week, as_role, client):
    assert client.get("/reports/").status_code == 302
    assert as_role(None).get("/reports/").status_code == 403
    for path in ("/reports/?days=7", "/reports/per/agent/?days=7",
                 "/reports/qa/?days=7",
                 "/reports/compare/?days=7&kind=model&a=gpt-4.1&b=gpt-4.1-mini"):
        body = as_role("viewer").get(path).content.decode()
        for customer in ("ann", "bob", "dan"):
            assert f">{customer}<" not in body


def test_query_count_does_not_grow_with_the_period(week, as_role):
    c = as_role("manager")
    counts = {}
    for days in (7, 90):
        for path in ("/reports/", "/reports/per/agent/",
                     "/reports/compare/"):
            with CaptureQueriesContext(connection) as ctx:
                assert c.get(f"{path}?days={days}").status_code == 200
            counts[path, days] = len(ctx.captured_queries)
    for path in ("/reports/", "/reports/per/agent/",
                 "/reports/compare/"):
        assert counts[path, 7] == counts[path, 90], counts


def test_qa_results_from_submitted_reviews(week, as_role):
    from django.contrib.auth.models import User

    from scoring.qa import review_submit

    version = scorecard_default_ensure()
    categories = list(version.categories.all())
    reviewer = User.objects.create(username="rita")
    answers = {}
    for cat in categories:
        fail = cat.critical
        answers[cat.key] = {"value": (0 if cat.scale == "yes_no" else 1) if fail else
                            (1 if cat.scale == "yes_no" else 5)}
    review_submit(reviewer=reviewer, conversation=week["conv-b"], version=version,
                  answers=answers)
    rollups_refresh()
    text = _text(as_role("manager").get("/reports/qa/?days=7"))
    assert "Reviews 1" in text
    assert "Pass rate 0% 0 of 1 reviews passed" in text
    agent = _text(as_role("manager").get("/reports/per/agent/?days=7"))
    assert "1 reviews, 1 failed" in agent


def test_api_reports_give_the_same_figures_with_their_n(week, as_role):
    from tests.support.roles import token_for

    headers = {"Authorization": f"Token {token_for('viewer')}"}
    c = as_role(None)
    since = f"since={TODAY - timedelta(days=6)}&until={TODAY}"
    body = c.get(f"/api/reports/outcomes/?{since}", headers=headers).json()
    total = body["total"]
    assert total["conversations"] == 5
    assert total["resolved"] == {"count": 3, "n": 5, "rate": 0.6}
    assert total["nps"] == {"score": -25.0, "n": 4, "promoters": 1, "detractors": 2}
    assert total["revenue"] == {"EUR": "69.90", "USD": "100.00"}
    assert total["first_response_seconds"]["n"] == 4
    assert body["worst"]["lowest_csat"][0] == {"conversation": week["conv-a2"].pk,
                                                "value": 2.0}
    groups = c.get(f"/api/reports/groups/?kind=team&{since}", headers=headers).json()
    assert [(g["key"], g["conversations"]) for g in groups["groups"]] == [("Billing", 1)]
    compare = c.get(f"/api/reports/compare/?{since}&a=gpt-4.1&b=gpt-4.1-mini",
                    headers=headers).json()
    resolved = next(r for r in compare["comparisons"] if r["figure"] == "resolved")
    assert (resolved["a"]["n"], resolved["b"]["n"]) == (3, 1)
    bad = c.get("/api/reports/compare/?a=x", headers=headers)
    assert bad.status_code == 400 and "a" in bad.json()
    long = c.get("/api/reports/outcomes/?since=2020-01-01&until=2026-01-01", headers=headers)
    assert long.status_code == 400 and "since" in long.json()
    qa = c.get(f"/api/reports/qa/?{since}", headers=headers)
    assert qa.status_code == 200 and qa.json()["reviews"]["n"] == 0
