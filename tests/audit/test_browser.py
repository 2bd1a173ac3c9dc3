"""The pages in a real browser: headless Debian Chromium driven by Playwright against the
live server, signing in through the form as each role."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from audit.masking import mask_address
from audit.roles import roles_ensure
from audit.rollups import rollups_refresh
from conversations.models import Conversation, Flag
from demo.scenarios import scenario_get
from tests.support.browser import shot, sign_in
from tests.support.scenarios import play

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def data(client, settings):
    for key in ("whatsapp-window-expired", "sms-ai-kept-talking", "web-on-time",
                "web-missed-request", "email-dropped-at-resolve"):
        play(client, settings, scenario_get(key))
    rollups_refresh()  # what beat does every minute
    roles_ensure()
    for role in ("manager", "qa_reviewer", "viewer"):
        user = User.objects.create_user(f"{role}-1", password="correct horse")
        user.groups.add(Group.objects.get(name=role))
    return {c.channel: c for c in Conversation.objects.all()}


def test_each_role_signs_in_and_sees_the_inbox(browser, live_server, data):
    for role in ("manager", "qa_reviewer", "viewer"):
        page = sign_in(browser, live_server, f"{role}-1")
        expect(page.locator("#inbox tbody tr")).to_have_count(5)
        expect(page.locator("header")).to_contain_text(role.replace("_", " "))
        page.close()


def test_a_manager_filters_opens_a_replay_and_acknowledges_a_flag(browser, live_server, data):
    page = sign_in(browser, live_server, "manager-1")
    shot(page, "inbox-1440")
    page.select_option("#id_channel", "whatsapp")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"channel=whatsapp"))
    rows = page.locator("#inbox tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("In the queue")
    expect(rows.first).to_contain_text("dropped")
    # The filtered view is a link: opening it again shows the same rows.
    page.goto(page.url)
    expect(page.locator("#inbox tbody tr")).to_have_count(1)

    rows.first.locator("a").first.click()
    expect(page.locator("#timeline")).to_contain_text("My washing machine leaks")
    expect(page.locator("#handoffs")).to_contain_text(re.compile("in the queue", re.I))
    shot(page, "replay-1440")
    flag = Flag.objects.get(conversation=data["whatsapp"], kind="handoff_dropped")
    box = page.locator(f"#flag-{flag.pk}")
    box.locator("select[name=status]").select_option("acknowledged")
    box.locator("textarea[name=note]").fill("Paging the repairs team lead")
    box.locator("button[type=submit]").click()
    expect(page.locator(f"#flag-{flag.pk} .flag-status")).to_have_text("Acknowledged")
    expect(page.locator(f"#flag-{flag.pk}")).to_contain_text("manager-1")
    flag.refresh_from_db()
    assert (flag.status, flag.status_changed_by, flag.note) == (
        "acknowledged", "manager-1", "Paging the repairs team lead")
    page.close()


def test_a_viewer_sees_contacts_masked_and_no_flag_actions(browser, live_server, data):
    page = sign_in(browser, live_server, "viewer-1", width=390)
    shot(page, "inbox-390-viewer")
    whatsapp = data["whatsapp"]
    expect(page.locator("#inbox")).not_to_contain_text(whatsapp.customer_address)
    expect(page.locator("#inbox")).to_contain_text(mask_address(whatsapp.customer_address))
    page.goto(f"{live_server.url}/conversations/{whatsapp.pk}/")
    expect(page.locator("h1")).to_contain_text(mask_address(whatsapp.customer_address))
    expect(page.locator("#flags form")).to_have_count(0)
    expect(page.locator("text=Raw events behind this conversation")).to_have_count(0)
    shot(page, "replay-390-viewer")
    page.close()


def test_a_manager_downloads_the_filtered_inbox_as_csv(browser, live_server, data):
    import csv
    import io

    page = sign_in(browser, live_server, "manager-1")
    page.goto(f"{live_server.url}/inbox/?channel=sms")
    with page.expect_download() as info:
        page.click("text=Export CSV")
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 1 and rows[0]["channel"] == "sms"
    assert rows[0]["customer"] == data["sms"].customer_address
    page.close()
    viewer = sign_in(browser, live_server, "viewer-1")
    expect(viewer.locator("text=Export CSV")).to_have_count(0)
    assert viewer.request.get(f"{live_server.url}/export.csv").status == 403
    viewer.close()


def test_dashboards_draw_their_charts_and_link_to_conversations(browser, live_server, data):
    page = sign_in(browser, live_server, "qa_reviewer-1")
    page.click("header >> text=Dashboards")
    expect(page.locator("h1")).to_contain_text("Dashboard")
    # The figures come from the rollups the data fixture refreshed: the page says so.
    expect(page.locator("[data-freshness]")).to_contain_text("Figures as of")
    expect(page.locator("[data-freshness]")).to_contain_text("up to date")
    assert page.locator("svg").count() >= 3
    shot(page, "dashboards-1440")
    link = page.locator("a[href*='handoff_state=']").first
    link.click()
    expect(page.locator("h1")).to_have_text("Inbox")
    assert "handoff_state=" in page.url
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{live_server.url}/dashboards/")
    shot(page, "dashboards-390")
    page.close()


def test_tone_by_language_and_channel_distributions_fit_a_phone(browser, live_server):
    from scoring.models import BrandVoice
    from scoring.services import messages_score
    from tests.scoring.test_scoring_services import record
    from tests.support.scoring_brand import BRISA

    BrandVoice.objects.create(**BRISA, is_default=True)
    texts = ([("Thanks so much for waiting! We're happy to help.", "whatsapp")] * 20
             + [("hey lol calm down ur order is gonna be late", "sms")] * 20
             + [("Gracias por esperar. Su pedido llegará el martes.", "web")] * 21)
    messages_score(message_ids=[record(t, channel=ch, customer=f"+1212555{i:04d}").pk
                                for i, (t, ch) in enumerate(texts)])
    roles_ensure()
    User.objects.create_user("viewer-1", password="correct horse").groups.add(
        Group.objects.get(name="viewer"))
    page = sign_in(browser, live_server, "viewer-1")
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{live_server.url}/dashboards/?days=7")
    shot(page, "dashboards-tone-390")
    expect(page.get_by_role("heading", name="Channels compared as distributions")).to_be_visible()
    expect(page.locator("text=SMS vs WhatsApp")).to_be_visible()
    expect(page.get_by_text("Spanish", exact=True)).to_be_visible()
    # Nothing wider than the phone: the page does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.close()
