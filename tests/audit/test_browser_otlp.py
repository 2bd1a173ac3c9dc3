"""The span tree and the customer page in a real browser at 390 px: an AI turn exported
over OTLP/HTTP is drawn as a tree on a time axis with its failed tool
marked and the handoff decision that followed; the customer who came back on WhatsApp
after the dropped handoff has every conversation in one timeline."""

import pytest
from playwright.sync_api import expect

from tests.support.browser import shot, sign_in
from tests.support.journeys import traced_journey_plant

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def journey(client, settings):
    return traced_journey_plant(client, settings)


def test_the_replay_draws_the_span_tree_at_390px(browser, live_server, journey):
    web, _ = journey
    page = sign_in(browser, live_server, "manager-1", width=390)
    page.goto(f"{live_server.url}/conversations/{web.pk}/")
    turn = page.locator(".k-ai_turn")
    expect(turn).to_have_count(1)
    expect(turn.locator(".span-row")).to_have_count(5)
    expect(turn.locator(".span-failed")).to_have_count(1)
    expect(turn.locator(".span-failed")).to_contain_text("carrier API timed out")
    expect(turn.locator(".span-row").first).to_contain_text("agent Brisa")
    decisions = turn.locator(".decision")
    expect(decisions.first).to_contain_text("Handoff requested by the AI, 2.0 s after the turn")
    expect(decisions.nth(1)).to_contain_text("Handoff abandoned, 7.0 s after the turn ended")
    expect(turn.locator(".axis span")).to_have_count(5)
    expect(turn.locator(".axis")).to_contain_text("4.2 s")
    expect(turn).to_contain_text("1 agent, 2 LLM calls, 1 tool, 1 retrieval in 4.2 s; 1 failed")
    # The tree: the agent at depth 0, the rest one level in.
    depths = [row.get_attribute("class").split()[1] for row in turn.locator(".span-row").all()]
    assert depths == ["depth-0"] + ["depth-1"] * 4
    rows = turn.locator(".span-row").all()
    indent = (rows[1].locator(".span-label").bounding_box()["x"]
              - rows[0].locator(".span-label").bounding_box()["x"])
    assert 12 < indent < 16, indent  # one level: .9rem
    # The bars sit on the time axis: the agent spans the turn, the tool (1.3 s to 2.3 s of
    # 4.2 s) starts after the first LLM call and ends before the retrieval begins.
    bars = [row.locator("rect.span-bar").bounding_box() for row in rows]
    track = rows[0].locator("svg.track").bounding_box()
    assert abs(bars[0]["width"] - track["width"]) < 2
    assert bars[1]["x"] < bars[2]["x"] < bars[3]["x"] < bars[4]["x"]
    assert bars[2]["x"] + bars[2]["width"] <= bars[3]["x"] + 1
    tool_track = rows[2].locator("svg.track").bounding_box()  # indented with its row
    assert abs(bars[2]["x"] - tool_track["x"] - tool_track["width"] * 1300 / 4200) < 3
    # The axis labels stand at their quarter: "2.1 s" in the middle of the track.
    middle = turn.locator(".axis span").nth(2).bounding_box()
    assert abs(middle["x"] + middle["width"] / 2 - (track["x"] + track["width"] / 2)) < 3
    # Nothing wider than the phone.
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(
        e => e.getBoundingClientRect().right > 391).slice(0, 5).map(
        e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    assert width <= 390, (width, wide)
    turn.locator(".span-failed details summary").click()
    expect(turn.locator(".span-failed details")).to_contain_text("order_status")
    shot(page, "replay-span-tree-390")
    page.close()


def test_the_customer_page_has_every_channel_in_one_timeline_at_390px(browser, live_server,
                                                                       journey):
    web, whatsapp = journey
    assert web.customer_id == whatsapp.customer_id
    page = sign_in(browser, live_server, "manager-1", width=390)
    page.goto(f"{live_server.url}/customers/")
    expect(page.locator("#journey-metric")).to_contain_text("100%")
    page.click("text=Lucía")
    expect(page.locator("#lanes .span-row")).to_have_count(2)
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("Web chat")
    expect(timeline).to_contain_text("WhatsApp")
    expect(timeline).to_contain_text("came back on WhatsApp")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "customer-390")
    page.close()
