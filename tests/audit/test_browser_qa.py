"""QA review in a real browser (issue 7): a reviewer takes the next item of a queue, fills
the scorecard with the keyboard, confirms one flag and marks another a false positive; a
second reviewer double-reviews blind; the agreement page shows the figures."""

import re

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from audit.qa_models import ReviewQueue
from audit.qa_queues import queue_fill
from audit.roles import roles_ensure
from conversations.models import Flag
from scoring.models import Review, Score
from scoring.qa import scorecard_default_ensure
from tests.support.browser import shot, sign_in
from tests.support.qa import conversation, flag, message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue_data():
    roles_ensure()
    for name in ("alice", "bob"):
        user = User.objects.create_user(name, password="correct horse")
        user.groups.add(Group.objects.get(name="qa_reviewer"))
    conv = conversation()
    msg = message(conv)
    tone, pii = flag(conv, "tone_off_brand", msg.pk), flag(conv, "pii_leak", msg.pk)
    version = scorecard_default_ensure()
    queue = ReviewQueue.objects.create(name="Everything, twice", scorecard=version.scorecard,
                                       channel_percent={"whatsapp": 100}, double_percent=100)
    queue_fill(queue=queue)
    return {"conv": conv, "msg": msg, "tone": tone, "pii": pii, "queue": queue}


def test_reviewers_take_fill_with_the_keyboard_double_review_blind_and_see_agreement(
        browser, live_server, queue_data):
    d = queue_data
    conv, tone, pii = d["conv"], d["tone"], d["pii"]

    # alice: queue -> take next -> the replay's scorecard, keyboard only.
    page = sign_in(browser, live_server, "alice")
    page.click("header >> text=QA")
    expect(page.locator("h1")).to_have_text("QA review queues")
    expect(page.locator(f"#queue-{d['queue'].pk}")).to_contain_text("0 done")
    page.click(f"#queue-{d['queue'].pk} >> text=Take next")
    expect(page).to_have_url(re.compile(rf"/conversations/{conv.pk}/\?queue=\d+#review"))
    expect(page.locator("#review")).to_contain_text("double review, blind")
    page.locator("#ans-greeting-1").focus()
    # greeting yes, empathy 4, brand tone 3, solution offered N/A, handoff needed no,
    # handoff on time N/A, accuracy yes, closing no; then the two flags.
    for key in ("y", "4", "3", "x", "n", "x", "y", "n", "c", "f"):
        page.keyboard.press(key)
    expect(page.locator("#review-comment")).to_be_focused()  # after the last group
    page.keyboard.type("alice-was-here")
    page.locator(f"textarea[name=note-comment-{d['msg'].pk}]").evaluate(
        "el => el.closest('details').open = true")
    page.fill(f"input[name=note-label-{d['msg'].pk}]", "too formal")
    shot(page, "qa-review-1440")
    page.locator("#review-comment").focus()
    page.keyboard.press("Control+Enter")
    # Submitted; the queue has nothing else for alice (the second slot is someone else's).
    expect(page).to_have_url(re.compile(r"/qa/\?empty="))
    expect(page.locator("[role=status]")).to_contain_text("Nothing left to take")
    review = Review.objects.get(reviewer__username="alice")
    answers = {a.category.key: (a.value, a.na) for a in review.answers.all()}
    assert answers == {"greeting": (1, False), "empathy": (4, False), "brand_tone": (3, False),
                       "solution_offered": (None, True), "handoff_needed": (0, False),
                       "handoff_on_time": (None, True), "accuracy": (1, False),
                       "closing": (0, False)}
    assert {v.flag_id: v.verdict for v in review.flag_verdicts.all()} == {
        tone.pk: "confirmed", pii.pk: "false_positive"}
    assert review.comment == "alice-was-here"
    assert [(n.message_id, n.label) for n in review.message_notes.all()] == [
        (d["msg"].pk, "too formal")]
    # A double review: alice's false positive waits for the second review (bob is blind).
    assert Flag.objects.get(pk=pii.pk).status == "open"
    assert Flag.objects.get(pk=tone.pk).status == "open"
    page.close()

    # bob takes the same conversation's second slot, at phone width: blind.
    page = sign_in(browser, live_server, "bob", width=390)
    page.goto(f"{live_server.url}/qa/")
    page.click(f"#queue-{d['queue'].pk} >> text=Take next")
    expect(page).to_have_url(re.compile(rf"/conversations/{conv.pk}/"))
    expect(page.locator("#blind-note")).to_be_visible()
    body = page.locator("body")
    expect(body).not_to_contain_text("alice")
    expect(body).not_to_contain_text("too formal")
    # alice's false positive reads as open to bob, and he judges it himself.
    expect(page.locator(f"#flag-{pii.pk} .flag-status")).to_have_text("Open")
    expect(page.locator(f"#verdict-{pii.pk}")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "qa-review-390-blind")
    # A missing answer is named next to its field; the rest is kept.
    page.click("#ans-greeting-0")
    page.click("#review-submit")
    expect(page.locator("#err-answers")).to_contain_text("Unanswered")
    expect(page.locator("#ans-greeting-0")).to_be_checked()
    for answer in ("empathy-2", "brand_tone-3", "solution_offered-1", "handoff_needed-0",
                   "handoff_on_time-na", "accuracy-1", "closing-0"):
        page.click(f"#ans-{answer}")
    page.click(f"#verdict-{tone.pk}-confirmed")
    page.click(f"#verdict-{pii.pk}-confirmed")
    page.click("#review-submit")
    expect(page).to_have_url(re.compile(r"/qa/\?empty="))
    # Both slots done: alice's false positive is applied, in her name.
    pii.refresh_from_db()
    assert (pii.status, pii.status_changed_by) == ("false_positive", "alice")
    # Both submitted: bob now sees alice's review.
    page.goto(f"{live_server.url}/conversations/{conv.pk}/")
    expect(page.locator("#other-reviews")).to_contain_text("alice")
    expect(page.locator("#other-reviews")).to_contain_text("alice-was-here")
    expect(page.locator("#blind-note")).to_have_count(0)
    assert set(Score.objects.filter(source="human", name="qa:greeting")
               .values_list("author", "value")) == {("alice", 1.0), ("bob", 0.0)}

    # The agreement page: greeting on one item, both reviewers; pii_leak 1 of 2 confirmed.
    page.click("header >> text=QA")
    page.click("text=Agreement & calibration")
    expect(page).to_have_title("QA agreement & calibration · Handoff Auditor")
    expect(page.locator("header a.on")).to_have_text("QA")  # the nav marks where you are
    greeting = page.locator('#agreement tr[data-category="greeting"]')
    expect(greeting.locator(".kappa-n")).to_have_text("1 item")
    expect(greeting.locator(".alpha-n")).to_contain_text("1 item · 2 answers")
    expect(greeting).to_contain_text(f"#{conv.pk}")  # they disagreed on it
    empathy = page.locator('#agreement tr[data-category="empathy"]')
    expect(empathy).to_contain_text(f"#{conv.pk}")
    pii_row = page.locator('#precision tr[data-kind="pii_leak"]')
    expect(pii_row.locator(".prec")).to_have_text("50%")
    expect(pii_row.locator(".prec-n")).to_have_text("2 verdicts on 1 flag")
    expect(page.locator('#precision tr[data-kind="tone_off_brand"] .prec')).to_have_text("100%")
    shot(page, "qa-agreement-390")
    page.close()
