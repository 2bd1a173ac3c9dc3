"""The Today page: what went wrong in a period, grouped, each group's figure equal to the
rows its link opens in the inbox; the figures against the previous period; the open flags
to act on first. Data: the whole scenario library played into the last two weeks, as the
demo does."""

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.problems import HANDOFF_PROBLEMS
from conversations.flag_text import flag_summary
from conversations.models import FLAG_SEVERITY_RANK, Flag
from demo.handoffs import demo_handoff_scenarios_seed

pytestmark = pytest.mark.django_db

GROUP = re.compile(r'<li class="group[^"]*" data-problem="([^"]+)">\s*<a href="([^"]+)">'
                   r'<span class="g-label">([^<]+)</span><span class="g-count">(\d+)</span>')


@pytest.fixture
def library(db):
    added, failed = demo_handoff_scenarios_seed(now=timezone.now())
    assert added and not failed
    return added


def inbox_rows(client, link: str) -> int:
    response = client.get(html.unescape(link))
    assert response.status_code == 200, response.content[:500]
    body = response.content.decode()
    assert 'rel="next"' not in body  # one page holds them all: the count is the whole list
    return body.count('data-conversation="')


def test_each_group_counts_what_its_inbox_link_shows(library, as_role):
    for period in ("today", "yesterday", "7d"):
        group_counts_check(as_role("manager"), period)


def group_counts_check(manager, period: str) -> None:
    page = manager.get("/", {"period": period})
    assert page.status_code == 200
    body = page.content.decode()
    groups = GROUP.findall(body)
    assert {key for key, *_ in groups} >= {p.key for p in HANDOFF_PROBLEMS}
    for key, link, label, count in groups:
        assert "problem=" + key in html.unescape(link)
        assert inbox_rows(manager, link) == int(count), (period, label)
    total = re.search(r'id="any-handoff" href="([^"]+)">(\d+|No)', body)
    shown = 0 if total.group(2) == "No" else int(total.group(2))
    assert inbox_rows(manager, total.group(1)) == shown
    if period == "7d":  # the library spreads over two weeks: a week has problems
        assert shown > 0 and sum(int(c) for *_, c in groups) >= shown


def test_a_week_lists_the_library_problems_in_words(library, as_role):
    body = as_role("manager").get("/?period=7d").content.decode()
    counts = {key: int(count) for key, _, _, count in GROUP.findall(body)}
    assert counts["sla"] > 0 and counts["closed_before_human"] + counts["window"] > 0
    assert re.search(r"worst \d+ (h|min|s|day)", body)  # the SLA group's worst overrun
    # The figures compare with the week before.
    assert "SLA met" in body and " vs " in body
    assert "{'" not in body and "[{" not in body and "handoff_" not in body


def test_act_first_lists_open_flags_most_severe_then_oldest(library, as_role):
    body = as_role("manager").get("/").content.decode()
    listed = [int(pk) for pk in re.findall(r'#flag-(\d+)"', body)]
    assert listed
    flags = {f.pk: f for f in Flag.objects.filter(pk__in=listed)}
    assert all(f.status == "open" for f in flags.values())
    order = [(-FLAG_SEVERITY_RANK[flags[pk].severity], flags[pk].raised_at) for pk in listed]
    assert order == sorted(order)
    first = flags[listed[0]]
    assert html.escape(flag_summary(first)) in body
    # Acknowledging the most urgent one takes it off the list.
    Flag.objects.filter(pk=first.pk).update(status="acknowledged")
    body = as_role("manager").get("/").content.decode()
    assert f"#flag-{first.pk}\"" not in body


def test_a_false_positive_leaves_its_group_and_a_viewer_sees_the_page(library, as_role):
    manager = as_role("manager")
    since = (timezone.localdate() - timedelta(days=6)).isoformat()
    flag = Flag.objects.filter(kind="handoff_stalled", raised_at__date__gte=since).first()
    link = f"/inbox/?problem=sla&flagged_since={since}"
    before = inbox_rows(manager, link)
    Flag.objects.filter(kind="handoff_stalled", conversation=flag.conversation).update(
        status="false_positive")
    assert inbox_rows(manager, link) == before - 1

    response = as_role("viewer").get("/?period=nonsense")
    assert response.status_code == 200
    assert "<h1 class=\"m0\">Today</h1>" in response.content.decode()
    assert as_role(None).get("/").status_code == 403
