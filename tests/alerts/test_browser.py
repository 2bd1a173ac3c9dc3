"""The alert pages in headless Chromium at 1440 and 390 px: a manager writes a rule in the
editor, the alert it fires shows in the header count and on the alerts page, is
acknowledged from there, and its page links to the inbox with its conversations."""

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import expect

from alerts.models import Alert, Rule
from alerts.services import alerts_evaluate_flags
from audit.roles import roles_ensure
from tests.support.browser import browser, shot, sign_in  # noqa: F401 (fixture)

from .conftest import dropped_flag

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def manager():
    roles_ensure()
    user = User.objects.create_user("maria", password="correct horse")
    user.groups.add(Group.objects.get(name="manager"))
    return user


@pytest.mark.parametrize("width", [1440, 390])
def test_manager_writes_a_rule_sees_the_alert_and_acknowledges_it(browser, live_server,  # noqa: F811
                                                                  manager, width):
    page = sign_in(browser, live_server, "maria", width=width)
    page.goto(f"{live_server.url}/alerts/rules/new/")
    page.fill("#id_name", "Dropped handoffs on WhatsApp")
    page.select_option("#id_kind", "flag")
    page.check("input[name=flag_kinds][value=handoff_dropped]")
    page.check("input[name=channels][value=whatsapp]")
    page.select_option("#id_min_severity", "medium")
    shot(page, f"alerts-rule-editor-{width}")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#rules")).to_contain_text(
        "A new handoff dropped flag (medium or worse) on whatsapp")
    shot(page, f"alerts-rules-{width}")
    rule = Rule.objects.get()
    assert (rule.version, rule.updated_by) == (1, "maria")

    flags = [dropped_flag(at=timezone.now()) for _ in range(2)]
    alerts_evaluate_flags()
    alert = Alert.objects.get()
    page.goto(f"{live_server.url}/alerts/")
    expect(page.locator("#alert-count")).to_have_text("1")
    row = page.locator(f"[data-alert='{alert.pk}']")
    expect(row).to_contain_text("2 matching flags since")
    shot(page, f"alerts-list-{width}")
    row.locator("button", has_text="Acknowledge").click()
    expect(page.locator("#alert-count")).to_have_count(0)
    expect(page.locator(f"[data-alert='{alert.pk}']")).to_contain_text("acknowledged by maria")

    page.click(f"[data-alert='{alert.pk}'] >> text=Dropped handoffs on WhatsApp")
    expect(page.locator("#history")).to_contain_text("Acknowledged")
    shot(page, f"alerts-detail-{width}")
    page.click("#inbox-link")
    rows = page.locator("#inbox tbody tr[data-conversation]")
    expect(rows).to_have_count(2)
    shown = {int(rows.nth(i).get_attribute("data-conversation")) for i in range(2)}
    assert shown == {f.conversation_id for f in flags}
    # Nothing overflows the narrow screen sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    page.close()
