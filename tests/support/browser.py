"""A headless Debian Chromium driven by Playwright (one per test module), signing in through
the form, and screenshots when HANDOFF_AUDITOR_SCREENSHOTS names a directory."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("HANDOFF_AUDITOR_SCREENSHOTS", "")) if os.environ.get(
    "HANDOFF_AUDITOR_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is needed at {CHROMIUM} (bin/ensure-chromium installs it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def sign_in(browser, live_server, username: str, width: int = 1440) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{live_server.url}/inbox/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "correct horse")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Inbox")
    return page


def shot(page: Page, name: str) -> None:
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
