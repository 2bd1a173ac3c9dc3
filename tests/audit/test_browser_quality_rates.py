"""The dashboards' answer-quality tables in a real browser, on a desktop and a phone: the
rates read in words and figures, a rate opens the inbox of its conversations, and the page
does not scroll sideways at 390 px (a wide table scrolls inside its own box)."""

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from audit.roles import roles_ensure
from tests.audit.test_quality_figures import data  # noqa: F401 (a fixture)
from tests.support.browser import shot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def viewer(db) -> None:
    roles_ensure()
    User.objects.create_user("vi", password="correct horse").groups.add(
        Group.objects.get(name="viewer"))


@pytest.mark.parametrize("width", [1440, 390])
def test_quality_rates_open_their_conversations(browser, live_server, data, viewer,  # noqa: F811
                                                width, settings):
    page = sign_in(browser, live_server, "vi", width=width)
    page.goto(f"{live_server.url}/dashboards/?days=90")
    table = page.locator("section.card", has_text="Answer quality by AI model")
    expect(table.locator("thead")).to_contain_text("Answer not supported by sources")
    row = table.locator("tbody tr", has_text="model-b")
    expect(row).to_contain_text("100%")
    expect(row).to_contain_text("1 of 1")
    shot(page, f"dashboards-quality-{width}")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    row.get_by_role("link", name="100%").first.click()
    expect(page.locator("h1")).to_have_text("Inbox")
    expect(page.locator("#inbox tbody tr")).to_have_count(1)
    expect(page.locator("#inbox tbody tr")).to_have_attribute(
        "data-conversation", str(data["c1"].pk))
    page.close()
