"""The Content-Security-Policy in a real browser (issue 13): every main page (sign-in, the
lockout page, inbox, replay with the QA panel, a replay with a traced AI turn, the
customers list and a customer page, dashboards, QA queues, queue form, agreement,
the admin, the API docs) loads in headless Chromium under the policy django-csp sends, the
browser reports no violation (neither a `securitypolicyviolation` event nor a console
message), no script error, and the pages' scripts still work: the narrow inbox folds its
filters, the charts are drawn, the QA keyboard answers and moves focus, Swagger UI and Redoc
render the schema."""

import re

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from audit.qa_models import ReviewQueue
from audit.qa_queues import queue_fill
from audit.roles import roles_ensure
from audit.rollups import rollups_refresh
from conversations.models import Conversation, Flag
from demo.scenarios import scenario_get
from scoring.qa import scorecard_default_ensure
from tests.support.browser import shot
from tests.support.journeys import traced_journey_plant
from tests.support.scenarios import play

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Runs in every document before its own scripts (Playwright's init scripts are not subject
# to the page's CSP); each violation is handed to Python at once, so none is lost when the
# page navigates away.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.cspViolation([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber].join(" "));
});
"""


class Watched:
    """A page whose CSP violations, CSP console messages and script errors are recorded."""

    def __init__(self, browser, width: int = 1440):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.violations: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        self.context.expose_function("cspViolation", lambda text: self.violations.append(text))
        self.context.add_init_script(REPORT_VIOLATIONS)
        self.page: Page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def settle(self) -> None:
        # Violations reach Python through an exposed function: let pending calls land.
        self.page.wait_for_load_state("networkidle")
        self.page.wait_for_timeout(150)

    def assert_clean(self, where: str) -> None:
        self.settle()
        assert self.violations == [], f"{where}: CSP violations {self.violations}"
        assert self.console == [], f"{where}: CSP console messages {self.console}"
        assert self.errors == [], f"{where}: script errors {self.errors}"

    def goto(self, url: str) -> Page:
        response = self.page.goto(url)
        assert response is not None and response.status < 400, (url, response and response.status)
        assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), url
        return self.page

    def sign_in(self, live_server, username: str) -> Page:
        self.goto(f"{live_server.url}/accounts/login/?next=/inbox/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", "correct horse")
        self.page.click("button[type=submit]")
        expect(self.page.locator("h1")).to_have_text("Inbox")
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def site(client, settings):
    for key in ("whatsapp-window-expired", "sms-ai-kept-talking", "web-on-time"):
        play(client, settings, scenario_get(key))
    rollups_refresh()
    roles_ensure()
    boss = User.objects.create_user("boss", password="correct horse", is_staff=True,
                                    is_superuser=True)
    boss.groups.add(Group.objects.get(name="manager"))
    version = scorecard_default_ensure()
    queue = ReviewQueue.objects.create(name="All WhatsApp", scorecard=version.scorecard,
                                       channel_percent={"whatsapp": 100})
    queue_fill(queue=queue)
    return {"queue": queue, "whatsapp": Conversation.objects.get(channel="whatsapp")}


def test_the_detector_sees_a_violation(browser, live_server, site):
    # The check below is only worth something if a violation would be seen: an inline
    # script and a style attribute added to a served page are refused and reported.
    w = Watched(browser)
    page = w.goto(f"{live_server.url}/accounts/login/")
    page.evaluate("""() => {
        const s = document.createElement("script");
        s.textContent = "document.body.dataset.ran = 'yes'";
        document.body.appendChild(s);
        document.querySelector("h1").setAttribute("style", "color: red");
    }""")
    w.settle()
    assert page.evaluate("document.body.dataset.ran") is None  # the inline script never ran
    assert any(v.startswith("script-src") for v in w.violations), w.violations
    assert any(v.startswith("style-src") for v in w.violations), w.violations
    assert w.console, "Chromium also logs each refusal to the console"
    w.close()


def test_every_main_page_runs_under_the_policy_with_no_violation(browser, live_server, site):
    base = live_server.url
    w = Watched(browser)
    page = w.goto(f"{base}/accounts/login/")
    expect(page.locator("h1")).to_have_text("Sign in")
    w.assert_clean("sign-in")

    w.sign_in(live_server, "boss")
    expect(page.locator("#inbox tbody tr")).to_have_count(3)
    expect(page.locator("#inbox svg.bar").first).to_be_visible()
    shot(page, "csp-inbox-1440")
    w.assert_clean("inbox")

    # Replay: the flag form's button still posts and the page comes back with the status.
    conv = site["whatsapp"]
    w.goto(f"{base}/conversations/{conv.pk}/")
    expect(page.locator("#timeline")).to_contain_text("My washing machine leaks")
    box = page.locator("#flags .flag").first
    box.locator("select[name=status]").select_option("acknowledged")
    box.locator("button[type=submit]").click()
    expect(page.locator("#flags .flag-status").first).to_have_text("Acknowledged")
    w.assert_clean("replay")

    # Dashboards: the charts and their legends are drawn.
    w.goto(f"{base}/dashboards/")
    assert page.locator("svg.chart").count() >= 3
    expect(page.locator("svg.swatch").first).to_be_visible()
    shot(page, "csp-dashboards-1440")
    w.assert_clean("dashboards")

    # QA: queues -> take next -> the review panel, answered with the keyboard (the static
    # script: "y" answers the focused category and moves focus to the next one).
    w.goto(f"{base}/qa/")
    expect(page.locator(f"#queue-{site['queue'].pk} svg.progress")).to_be_visible()
    shot(page, "csp-qa-queues-1440")
    page.click(f"#queue-{site['queue'].pk} >> text=Take next")
    expect(page).to_have_url(re.compile(r"/conversations/\d+/\?queue=\d+#review"))
    page.locator("#ans-greeting-1").focus()
    page.keyboard.press("y")
    expect(page.locator("#ans-greeting-1")).to_be_checked()
    assert page.evaluate("document.activeElement.name") == "answer-empathy"
    page.keyboard.press("4")
    expect(page.locator("#ans-empathy-4")).to_be_checked()
    w.assert_clean("QA review")
    w.goto(f"{base}/qa/queues/new/")
    expect(page.locator("h1")).to_have_text("New QA queue")
    w.assert_clean("queue form")
    w.goto(f"{base}/qa/agreement/")
    expect(page.locator("h1")).to_contain_text("Agreement")
    w.assert_clean("agreement")

    # The admin (Django's own pages) and the API docs (Swagger UI, Redoc).
    w.goto(f"{base}/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    w.goto(f"{base}/admin/auth/user/")
    expect(page.locator("#result_list")).to_contain_text("boss")
    w.assert_clean("admin")
    w.goto(f"{base}/api/docs/")
    # Both docs draw after fetching and reading the whole schema: slow on a loaded machine.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Handoff Auditor",
                                                                    timeout=60_000)
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    # The ingest endpoints are in the same docs, under their own tag (audit/api/ingest_docs).
    expect(page.locator(".swagger-ui .opblock-tag[data-tag=Ingest]")).to_be_visible()
    expect(page.locator(".swagger-ui .opblock-summary-path[data-path='/hooks/events/']")
           ).to_be_attached()
    w.assert_clean("Swagger UI")
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:"))
            else outside.append(r.url))
    w.goto(f"{base}/api/redoc/")
    # Redoc draws after fetching and reading the whole schema: slow on a loaded machine.
    expect(page.locator("h1").first).to_contain_text("Handoff Auditor", timeout=60_000)
    expect(page.get_by_role("heading", name="Signed events: web chat, the AI platform, "
                                           "the helpdesk")).to_be_attached()
    # Redoc's bundle draws its maker's logo from their CDN: the bundle we serve has that
    # address emptied, so the page asks the internet for nothing (and nothing is refused).
    w.settle()
    assert outside == [], outside
    expect(page.locator("img[alt='redocly logo']")).to_have_count(0)
    w.assert_clean("Redoc")
    w.close()


def test_the_narrow_inbox_folds_its_filters_and_the_lockout_page_is_clean(
        browser, live_server, site, settings):
    w = Watched(browser, width=390)
    page = w.sign_in(live_server, "boss")
    # The static script closed the filters on a narrow screen (the HTML says open).
    assert page.evaluate("document.querySelector('details.filters-box').open") is False
    shot(page, "csp-inbox-390")
    w.assert_clean("narrow inbox")
    page.click("header button[type=submit]")  # sign out
    for _ in range(settings.AXES_FAILURE_LIMIT):
        w.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "boss")
        page.fill("input[name=password]", "wrong")
        page.click("button[type=submit]")
    expect(page.locator("#locked-out h1")).to_have_text("Too many sign-in attempts")
    shot(page, "csp-locked-out-390")
    w.assert_clean("lockout page")
    w.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_span_tree_and_the_customer_pages_draw_under_the_policy(
        browser, live_server, client, settings, width):
    # The span tree's axis, indentation, bars and decision marks and the customer page's
    # lanes are drawn with classes and SVG attributes, never style="" (which the policy
    # refuses): no violation, and the geometry is really there.
    web, whatsapp = traced_journey_plant(client, settings)
    base = live_server.url
    w = Watched(browser, width=width)
    page = w.sign_in(live_server, "manager-1")
    w.goto(f"{base}/conversations/{web.pk}/")
    turn = page.locator(".k-ai_turn")
    expect(turn.locator(".span-row")).to_have_count(5)
    track = turn.locator("svg.track").first.bounding_box()
    agent, first_call = (turn.locator("rect.span-bar").nth(i).bounding_box() for i in (0, 1))
    assert abs(agent["width"] - track["width"]) < 2  # the agent spans the whole turn
    assert first_call["width"] < track["width"] / 2  # the first LLM call: 1.2 s of 4.2 s
    labels = [turn.locator(".span-label").nth(i).bounding_box()["x"] for i in (0, 1)]
    assert labels[1] > labels[0] + 10  # the children are indented one level
    expect(turn.locator("line.mark")).to_have_count(5 * 2)  # two decisions on each row
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"csp-span-tree-{width}")
    w.assert_clean("replay with a traced AI turn")

    w.goto(f"{base}/customers/")
    expect(page.locator("#journey-metric")).to_contain_text("100%")
    done = page.locator("#journey-metric svg.progress rect.p-bad").bounding_box()
    bar = page.locator("#journey-metric svg.progress").bounding_box()
    assert abs(done["width"] - bar["width"]) < 1  # 100 % came back
    shot(page, f"csp-customers-{width}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    w.assert_clean("customers")

    # A bar is red while its conversation has flags to deal with: settle the WhatsApp ones.
    assert Flag.objects.filter(conversation=web, status__in=Flag.ACTIVE_STATUSES).exists()
    Flag.objects.filter(conversation=whatsapp).update(status=Flag.Status.RESOLVED)
    w.goto(f"{base}/customers/{web.customer_id}/")
    lanes = page.locator("#lanes .span-row")
    expect(lanes).to_have_count(2)
    expect(page.locator("#lanes a.lane-bar")).to_have_count(2)
    expect(page.locator("#lanes a.lane-failed")).to_have_count(1)
    web_bar = page.locator(f"#lanes a.lane-bar[href$='/conversations/{web.pk}/'] rect")
    whatsapp_bar = page.locator(f"#lanes a.lane-bar[href$='/conversations/{whatsapp.pk}/'] rect")
    assert web_bar.bounding_box()["x"] < whatsapp_bar.bounding_box()["x"]  # web came first
    fills = [bar.evaluate("e => getComputedStyle(e).fill") for bar in (web_bar, whatsapp_bar)]
    assert fills == ["rgb(217, 45, 32)", "rgb(139, 92, 246)"], fills  # red: open flags
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"csp-customer-{width}")
    w.assert_clean("customer")
    whatsapp_bar.click()  # a bar is a link to its conversation's replay
    expect(page).to_have_url(f"{base}/conversations/{whatsapp.pk}/")
    w.assert_clean("replay from the customer page")
    w.close()
