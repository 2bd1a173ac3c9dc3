"""The access log in a real browser (headless Chromium), on a desktop and a phone: a
manager opens a conversation's raw events and its replay, then reads on /access-log/ who
did what in sentences, filters it, and nothing scrolls sideways at 390 px."""

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import expect

from audit.roles import roles_ensure
from conversations.models import Conversation
from tests.support.browser import shot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def conversation(db) -> Conversation:
    roles_ensure()
    for name, role in (("ana", "manager"), ("ben", "qa_reviewer")):
        user = User.objects.create_user(name, password="correct horse")
        user.groups.add(Group.objects.get(name=role))
    now = timezone.now()
    return Conversation.objects.create(
        channel="whatsapp", business_address="+15550001111",
        customer_address="whatsapp:+447700900123", status="open", started_at=now,
        last_activity_at=now)


@pytest.mark.parametrize("width", [1440, 390])
def test_a_manager_reads_who_opened_what(browser, live_server, conversation, width):
    ben = sign_in(browser, live_server, "ben", width=width)
    ben.goto(f"{live_server.url}/conversations/{conversation.pk}/")
    ben.close()
    ana = sign_in(browser, live_server, "ana", width=width)
    ana.goto(f"{live_server.url}/conversations/{conversation.pk}/raw/")
    expect(ana.locator("h1")).to_contain_text("Raw events")
    ana.locator("nav.main").get_by_text("Access log").click()
    expect(ana.locator("h1")).to_have_text("Access log")
    log = ana.locator("#access-log li")
    expect(log.first).to_contain_text(
        f"ana opened the raw events of conversation #{conversation.pk}")
    expect(ana.locator("#access-log")).to_contain_text(
        f"ben saw the personal data unmasked in conversation #{conversation.pk} (replay)")
    shot(ana, f"access-log-{width}")
    assert ana.evaluate("document.scrollingElement.scrollWidth") <= width
    # Filter to one person: the other's entries leave the list.
    if ana.locator("details.filters-box").get_attribute("open") is None:
        ana.locator("details.filters-box summary").click()
    ana.fill("input[name=user]", "ben")
    ana.locator("form.filters button[type=submit]").click()
    expect(log).to_have_count(1)
    expect(log.first).to_contain_text("ben saw the personal data unmasked")
    assert ana.evaluate("document.scrollingElement.scrollWidth") <= width
    # Following an entry opens the conversation (and that view is logged in turn).
    log.first.get_by_role("link", name="open").click()
    expect(ana).to_have_url(f"{live_server.url}/conversations/{conversation.pk}/")
    ana.close()
