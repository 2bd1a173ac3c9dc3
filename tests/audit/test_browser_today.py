"""Phones and desktops in a real browser (headless Chromium): the Today page lists the
seeded problems with their sentences, the inbox row at 390 px shows handoff state, wait vs
SLA and flag, and no main page scrolls sideways at 390 px."""

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import expect

from audit.roles import roles_ensure
from audit.rollups import rollups_refresh
from conversations.flag_text import flag_summary
from conversations.models import Flag
from demo.alerts import demo_alerts_seed
from demo.handoffs import demo_handoff_scenarios_seed
from demo.qa import demo_qa_seed
from tests.support.browser import shot, sign_in
from tests.support.pages import every_page

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = 390


@pytest.fixture
def data(db):
    added, failed = demo_handoff_scenarios_seed(now=timezone.now())
    assert added and not failed
    demo_qa_seed()
    demo_alerts_seed()
    rollups_refresh()
    roles_ensure()
    for role in ("manager", "viewer"):
        user = User.objects.create_user(f"{role}-1", password="correct horse", is_staff=True,
                                        is_superuser=role == "manager")
        user.groups.add(Group.objects.get(name=role))


def overflow(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


def test_the_today_page_lists_the_problems_in_words(browser, live_server, data):
    for width in (1440, PHONE):
        page = sign_in(browser, live_server, "manager-1", width=width)
        page.goto(f"{live_server.url}/?period=7d")
        expect(page.locator("h1")).to_have_text("Last 7 days")
        sla = page.locator("[data-problem=sla]")
        expect(sla).to_contain_text("Waited longer than the SLA")
        assert int(sla.locator(".g-count").inner_text()) > 0
        first = page.locator("#act-first li").first
        flag = Flag.objects.get(pk=first.locator("a").get_attribute("href").split("#flag-")[1])
        expect(first).to_contain_text(flag_summary(flag))
        shot(page, f"today-{width}")
        assert overflow(page) <= width
        # A group opens the inbox filtered to it.
        sla.locator("a").click()
        expect(page.locator("h1")).to_have_text("Inbox")
        expect(page.locator("#inbox tbody tr").first).to_contain_text("Waited")
        shot(page, f"inbox-sla-{width}")
        page.close()


def test_the_inbox_row_on_a_phone_shows_state_sla_and_flag(browser, live_server, data):
    page = sign_in(browser, live_server, "manager-1", width=PHONE)
    page.goto(f"{live_server.url}/inbox/?handoff_state=queued")
    row = page.locator("#inbox tbody tr").first
    for cell in ("td.c-state", "td.c-wait", "td.c-flags"):
        box = row.locator(cell).bounding_box()
        assert box and box["width"] > 0 and box["x"] + box["width"] <= PHONE, cell
    expect(row.locator("td.c-wait")).to_contain_text("so far")
    expect(row.locator("td.c-flags .reason").first).not_to_be_empty()
    shot(page, "inbox-390")
    page.close()


def test_no_page_scrolls_sideways_on_a_phone(browser, live_server, data):
    paths = every_page()  # every page, and a replay of every flag kind and handoff state
    assert len(paths) > 50
    for user in ("manager-1", "viewer-1"):
        page = sign_in(browser, live_server, user, width=PHONE)
        opened = 0
        for path in paths:
            response = page.goto(f"{live_server.url}{path}")
            if response.status == 403:
                continue
            assert response.status == 200, path
            opened += 1
            width = overflow(page)
            if width > PHONE:
                shot(page, f"overflow-{user}-{path.strip('/').replace('/', '-') or 'home'}")
            assert width <= PHONE, (user, path, width)
        assert opened >= len(paths) // 2, user
        page.close()


def test_replay_at_both_widths(browser, live_server, data):
    conversation = Flag.objects.filter(kind="handoff_stalled").first().conversation
    for width in (1440, PHONE):
        page = sign_in(browser, live_server, "manager-1", width=width)
        page.goto(f"{live_server.url}/conversations/{conversation.pk}/")
        expect(page.locator("#flags .reason").first).not_to_be_empty()
        expect(page.locator("#timeline")).not_to_contain_text("∅")
        shot(page, f"replay-{width}")
        assert overflow(page) <= width
        page.close()
