"""An answer-quality flag in a real browser at phone width: the sentence, the highlighted
span, the chunks; a manager assigns it to herself and adds a note; the history keeps both."""

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from audit.roles import roles_ensure
from conversations.models import Flag, FlagEvent
from demo.events import demo_web_journeys_seed
from tests.support.browser import shot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_manager_triages_an_ungrounded_answer_on_a_phone(browser, live_server):
    demo_web_journeys_seed()
    roles_ensure()
    user = User.objects.create_user("manager-1", password="correct horse")
    user.groups.add(Group.objects.get(name="manager"))
    flag = Flag.objects.get(kind="ungrounded_answer",
                            conversation__keys__key="events:web-en-ungrounded-gift-card")
    page = sign_in(browser, live_server, "manager-1", width=390)
    page.goto(f"{live_server.url}/conversations/{flag.conversation_id}/#flag-{flag.pk}")
    card = page.locator(f"#flag-{flag.pk}")
    expect(card.locator(".reason")).to_contain_text("found in no source")
    expect(card.locator("mark").first).to_be_visible()
    assert "$25" in card.locator("mark").all_inner_texts()
    # Nothing on the page is wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    card.locator("select[name=owner]").select_option("manager-1")
    card.locator("textarea[name=note]").fill("Checking with the returns team")
    card.locator("button[type=submit]").click()
    card = page.locator(f"#flag-{flag.pk}")
    expect(card.locator(".flag-owner")).to_have_text("manager-1")
    expect(card.locator(".trail")).to_contain_text("Checking with the returns team")
    shot(page, "replay-390-quality-flag")
    assert list(FlagEvent.objects.filter(flag=flag).values_list("action", flat=True)) == [
        "assign", "note"]
