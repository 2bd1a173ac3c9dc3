"""The report pages in headless Chromium at 1440 and 390 px: the figures read, the charts
draw, the group table sorts by a click, a row opens its conversations, the comparison form
works, and nothing overflows a phone's width."""

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from audit.roles import roles_ensure
from audit.rollups import rollups_refresh
from conversations.models import Conversation, Message
from scoring.qa import review_submit, scorecard_default_ensure
from scoring.services import messages_score
from tests.audit.outcome_data import TODAY, deliver, late_events, week_events
from tests.support.browser import SHOTS, shot, sign_in
from tests.support.events import SECRET

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The hand-worked week is in November 2026: the pages show the 90 days up to today.
DAYS = "days=90"


@pytest.fixture
def data(client, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}
    deliver(client, week_events() + late_events(), "browser-week")
    messages_score(message_ids=list(Message.objects.values_list("pk", flat=True)))
    rollups_refresh()
    rollups_refresh()
    roles_ensure()
    for role in ("manager", "viewer"):
        user = User.objects.create_user(f"{role}-1", password="correct horse")
        user.groups.add(Group.objects.get(name=role))
    # A reviewer failed bob's conversation on accuracy (critical) and passed ann's.
    reviewer = User.objects.create_user("rita")
    version = scorecard_default_ensure()
    answers = {c.key: {"value": 1 if c.scale == "yes_no" else 4}
               for c in version.categories.all()}
    review_submit(reviewer=reviewer, conversation=_conversation("conv-b"), version=version,
                  answers={**answers, "accuracy": {"value": 0}})
    review_submit(reviewer=reviewer, conversation=_conversation("conv-a"), version=version,
                  answers=answers)
    rollups_refresh()
    assert TODAY  # the data's own week; the period picker covers it


def _conversation(key: str) -> Conversation:
    return Conversation.objects.get(keys__key=f"events:{key}")


def _shots(page, name: str) -> None:
    """The whole page, and (when screenshots are wanted) in screen-high parts to look at."""
    shot(page, name)
    if SHOTS:
        height = page.evaluate("() => document.documentElement.scrollHeight")
        width = page.viewport_size["width"]
        for n, top in enumerate(range(0, min(height, 6000), 1400)):
            page.screenshot(path=str(SHOTS / f"{name}-part{n}.png"), full_page=True,
                            clip={"x": 0, "y": top, "width": width,
                                  "height": min(1400, height - top)})


def _fits(page) -> None:
    """Nothing wider than the viewport but the tables' own scrolling boxes."""
    overflow = page.evaluate("""() => document.documentElement.scrollWidth
                                     - document.documentElement.clientWidth""")
    widest = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                     && !e.closest('.table-wrap'))
        .slice(0, 3).map(e => e.tagName + '.' + e.className + ' ' + e.textContent.slice(0, 40))""")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px: {widest}"


@pytest.mark.parametrize("width", [1440, 390])
def test_outcomes_page_reads_and_fits(browser, live_server, data, width):
    page = sign_in(browser, live_server, "manager-1", width=width)
    page.goto(f"{live_server.url}/reports/?{DAYS}")
    tiles = page.locator(".tile")
    expect(tiles.filter(has_text="Resolution rate")).to_contain_text("60%")
    expect(tiles.filter(has_text="NPS")).to_contain_text("-25")
    expect(tiles.filter(has_text="Revenue")).to_contain_text("69.90 EUR")
    visible = ".wide svg.chart" if width > 640 else ".narrow svg.chart"
    assert page.locator(visible).count() >= 4
    expect(page.locator(visible).first).to_be_visible()
    _fits(page)
    _shots(page, f"reports-outcomes-{width}")
    tiles.filter(has_text="Contained").click()
    expect(page.locator("#inbox tbody tr")).to_have_count(1)  # D
    page.close()


@pytest.mark.parametrize("width", [1440, 390])
def test_group_table_sorts_and_opens_conversations(browser, live_server, data, width):
    page = sign_in(browser, live_server, "viewer-1", width=width)
    page.goto(f"{live_server.url}/reports/per/model/?{DAYS}")
    first = page.locator("#groups tbody tr th").first
    expect(first).to_have_text("gpt-4.1")  # most conversations first
    page.locator("#groups thead a", has_text="Resolved").click()
    expect(page.locator("#groups tbody tr th").first).to_have_text("gpt-4.1-mini")
    page.locator("#groups thead a", has_text="Resolved").click()  # again: ascending
    expect(page.locator("#groups tbody tr th").first).to_have_text("gpt-4.1")
    _fits(page)
    _shots(page, f"reports-per-model-{width}")
    page.locator("#groups tbody tr th a").first.click()
    expect(page.locator("#inbox tbody tr")).to_have_count(3)
    page.goto(f"{live_server.url}/reports/per/agent/?{DAYS}")
    expect(page.locator("#groups")).to_contain_text("Maya Diaz")
    _shots(page, f"reports-per-agent-{width}")
    page.close()


@pytest.mark.parametrize("width", [1440, 390])
def test_compare_and_qa_pages(browser, live_server, data, width):
    page = sign_in(browser, live_server, "manager-1", width=width)
    page.goto(f"{live_server.url}/reports/compare/?{DAYS}")
    page.fill("#id_a", "gpt-4.1")
    page.fill("#id_b", "gpt-4.1-mini")
    page.locator("form.compare button[type=submit]").click()
    expect(page.locator("#compare")).to_contain_text("Resolution rate")
    expect(page.locator("#compare")).to_contain_text("Fisher's exact test")
    _fits(page)
    _shots(page, f"reports-compare-{width}")
    page.goto(f"{live_server.url}/reports/qa/?{DAYS}")
    expect(page.locator("h1")).to_have_text("QA results")
    expect(page.locator("a.tile").first).to_contain_text("2 conversations reviewed")
    expect(page.locator("main")).to_contain_text("Accuracy / no hallucination")
    _fits(page)
    _shots(page, f"reports-qa-{width}")
    # The critical failures open the inbox on exactly the conversation that failed.
    tile = page.locator("a.tile", has_text="Critical failures")
    assert tile.get_attribute("data-count") == "1"
    tile.click()
    expect(page.locator("[data-conversation]")).to_have_count(1)
    expect(page.locator("[data-conversation]")).to_contain_text("bob")
    _fits(page)
    page.close()
