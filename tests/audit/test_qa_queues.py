"""QA review queues (issue 7): sampling, idempotent fill, take next (also two reviewers
at once on two connections), double review, the blind rule on every surface, the pages and
CSV per role."""

import csv
import io
import threading
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from audit.qa_models import QueueItem, QueueSlot, ReviewQueue
from audit.qa_queues import (
    QueueError,
    bucket_of,
    queue_fill,
    queue_review_submit,
    slot_take_next,
)
from conversations.models import Flag
from scoring.models import Review, Score
from scoring.qa import scorecard_create
from tests.support.qa import (
    CARD,
    T0,
    client_of,
    conversations,
    flag,
    full,
    message,
    person,
    queue,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def card():
    return scorecard_create(key="support", name="Support", categories=CARD, by="lead")


# --- filling -------------------------------------------------------------------------------


def test_sampling_takes_about_the_percent_per_channel_and_the_same_ones_again(card):
    wa = conversations(600, "whatsapp")
    sms = conversations(300, "sms")
    conversations(200, "email")  # no rule for e-mail
    q = queue(card, channel_percent={"whatsapp": 20, "sms": 50})
    added = queue_fill(queue=q)
    taken = set(q.items.values_list("conversation_id", flat=True))
    wa_taken = len(taken & {c.pk for c in wa})
    sms_taken = len(taken & {c.pk for c in sms})
    assert added == len(taken) == wa_taken + sms_taken
    assert 0.15 * 600 <= wa_taken <= 0.25 * 600
    assert 0.42 * 300 <= sms_taken <= 0.58 * 300
    # Deterministic: exactly the conversations whose bucket is under the percent.
    assert taken == {c.pk for c in wa if bucket_of(conversation_id=c.pk, queue_id=q.pk) < 20} | {
        c.pk for c in sms if bucket_of(conversation_id=c.pk, queue_id=q.pk) < 50}
    # Idempotent: a second fill adds nothing; one slot per single item.
    assert queue_fill(queue=q) == 0
    assert q.items.count() == len(taken) and QueueSlot.objects.filter(queue=q).count() == len(taken)


def test_flag_kind_dropped_handoff_and_filters(card):
    a, b, c, d = conversations(4, "web")
    flag(a, "pii_leak")
    flag(b, "handoff_dropped")
    flag(c, "tone_drift")
    late = conversations(1, "web", at=T0 + timedelta(days=30))[0]
    flag(late, "pii_leak")
    q = queue(card, flag_kinds=["pii_leak"], dropped_handoffs=True,
              since=T0.date(), until=(T0 + timedelta(days=7)).date())
    assert queue_fill(queue=q) == 2
    reasons = dict(q.items.values_list("conversation_id", "reason"))
    assert reasons == {a.pk: "flag:pii_leak", b.pk: "dropped_handoff"}
    flag(d, "pii_leak")  # a new match is added on the next fill, the rest stay once
    assert queue_fill(queue=q) == 1 and q.items.count() == 3


def test_double_share_makes_two_slots(card):
    conversations(400, "sms")
    q = queue(card, channel_percent={"sms": 100}, double_percent=30)
    queue_fill(queue=q)
    doubles = q.items.filter(double=True).count()
    assert 0.22 * 400 <= doubles <= 0.38 * 400
    assert QueueSlot.objects.filter(queue=q).count() == 400 + doubles


def test_fill_command_shows_progress_and_names_unknown_queues(card, capsys):
    conversations(30, "web")
    queue(card, name="web", channel_percent={"web": 100})
    call_command("fill_qa_queues")
    out = capsys.readouterr()
    assert "web: 30 added" in out.out and "30/30" in out.err
    with pytest.raises(Exception, match="No queue named nope"):
        call_command("fill_qa_queues", "nope")


# --- taking ------------------------------------------------------------------------------


def test_take_next_resumes_then_claims_and_gives_double_slots_to_two_reviewers(card):
    alice, bob = person("alice"), person("bob")
    c1, c2 = conversations(2, "web")
    q = queue(card, channel_percent={"web": 100}, double_percent=100)
    queue_fill(queue=q)
    first = slot_take_next(queue=q, reviewer=alice)
    assert first.item.conversation_id == c1.pk and first.number == 1
    assert slot_take_next(queue=q, reviewer=alice).pk == first.pk  # resumes her own
    second = slot_take_next(queue=q, reviewer=bob)
    assert second.item_id == first.item_id and second.number == 2  # the double's other slot
    queue_review_submit(reviewer=alice, conversation=c1, version=card, answers=full())
    nxt = slot_take_next(queue=q, reviewer=alice)
    assert nxt.item.conversation_id == c2.pk  # never her own item's second slot
    first.refresh_from_db()
    assert first.done_at and first.review.reviewer == alice


def test_only_listed_reviewers_take(card):
    alice, bob = person("alice"), person("bob")
    conversations(1, "web")
    q = queue(card, channel_percent={"web": 100})
    q.reviewers.add(alice)
    queue_fill(queue=q)
    with pytest.raises(QueueError):
        slot_take_next(queue=q, reviewer=bob)
    assert slot_take_next(queue=q, reviewer=alice) is not None


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_taking_at_once_get_different_items(card):
    """Two threads, two connections: SKIP LOCKED hands each a different free slot."""
    people = [person(f"r{i}") for i in range(6)]
    conversations(12, "web")
    q = queue(card, channel_percent={"web": 100})
    queue_fill(queue=q)
    got, errors = {}, []
    barrier = threading.Barrier(len(people))

    def take(user):
        try:
            barrier.wait()
            for _ in range(2):
                slot = slot_take_next(queue=q, reviewer=user)
                got.setdefault(user.username, []).append(slot.pk)
                QueueSlot.objects.filter(pk=slot.pk).update(done_at=T0)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(u,)) for u in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    taken = [pk for pks in got.values() for pk in pks]
    assert len(taken) == 12 and len(set(taken)) == 12
    assert QueueSlot.objects.filter(queue=q, reviewer__isnull=True).count() == 0
    for user in people:
        assert QueueSlot.objects.filter(reviewer=user).count() == 2


# --- blind --------------------------------------------------------------------------------


@pytest.fixture
def double(card):
    """One conversation with two flags in a 100% double queue; alice has submitted
    (confirming one flag, dismissing the other), bob has taken the second slot."""
    alice, bob, lead = person("alice"), person("bob"), person("lead", "manager")
    conv = conversations(1, "web")[0]
    msg = message(conv)
    f1, f2 = flag(conv, "tone_off_brand"), flag(conv, "pii_leak")
    q = queue(card, channel_percent={"web": 100}, double_percent=100)
    queue_fill(queue=q)
    slot_take_next(queue=q, reviewer=alice)
    slot_take_next(queue=q, reviewer=bob)
    queue_review_submit(reviewer=alice, conversation=conv, version=card,
                        answers={**full(), "greeting": 0},
                        verdicts=[{"flag_id": f1.pk, "verdict": "confirmed"},
                                  {"flag_id": f2.pk, "verdict": "false_positive"}],
                        notes=[{"message_id": msg.pk, "label": "alice-label"}],
                        comment="alice-comment")
    return {"alice": alice, "bob": bob, "lead": lead, "conv": conv, "f1": f1, "f2": f2,
            "queue": q, "msg": msg, "card": card}


def test_blind_reviewer_sees_none_of_the_first_review_until_submitting(double):
    d = double
    bob = client_of(d["bob"])
    page = bob.get(f"/conversations/{d['conv'].pk}/?queue={d['queue'].pk}")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="blind-note"' in html
    assert "alice-comment" not in html and "alice-label" not in html and "alice" not in html
    # alice's false positive is shown to bob as open, and he is asked for a verdict on it.
    assert f'name="verdict-{d["f2"].pk}"' in html and "False positive by" not in html
    # Recorded, not applied, while bob's slot is open (see the dismissal test below).
    assert Flag.objects.get(pk=d["f2"].pk).status == "open"
    # API: no human Score of alice's, no review of hers, flag status masked.
    scores = bob.get("/api/scores/", {"source": "human"}).json()["results"]
    assert scores == []
    assert bob.get("/api/qa/reviews/").json()["results"] == []
    flag_row = bob.get(f"/api/flags/{d['f2'].pk}/").json()
    assert flag_row["status"] == "open" and flag_row["status_changed_by"] == ""
    # Bob submits; now both see both.
    r = bob.post(f"/conversations/{d['conv'].pk}/review/", {
        "version": d["card"].pk, "action": "submit",
        **{f"answer-{k}": str(v) for k, v in full().items()},
        f"verdict-{d['f1'].pk}": "confirmed", f"verdict-{d['f2'].pk}": "confirmed",
    })
    assert r.status_code == 302
    html = bob.get(f"/conversations/{d['conv'].pk}/").content.decode()
    assert "alice-comment" in html and 'id="blind-note"' not in html
    assert {s["author"] for s in bob.get("/api/scores/", {"source": "human"}).json()["results"]
            } == {"alice", "bob"}
    alice_html = client_of(d["alice"]).get(f"/conversations/{d['conv'].pk}/").content.decode()
    assert "bob" in alice_html.split('id="other-reviews"')[1]
    # The last slot is done: alice's pending false positive is applied (bob's "confirmed"
    # does not keep it open), as alice.
    f2 = Flag.objects.get(pk=d["f2"].pk)
    assert (f2.status, f2.status_changed_by) == ("false_positive", "alice")
    assert f2.note.startswith("QA review ")


def test_first_reviewer_sees_nothing_of_a_draft_and_leads_see_everything(double):
    d = double
    Review.objects.create(reviewer=d["bob"], conversation=d["conv"], version=d["card"],
                          comment="bob-draft")
    alice_html = client_of(d["alice"]).get(f"/conversations/{d['conv'].pk}/").content.decode()
    assert "bob-draft" not in alice_html
    lead = client_of(d["lead"])
    html = lead.get(f"/conversations/{d['conv'].pk}/").content.decode()
    assert "alice-comment" in html and "blind-note" not in html
    assert len(lead.get("/api/scores/", {"source": "human"}).json()["results"]) > 0
    rows = list(csv.DictReader(io.StringIO(b"".join(
        lead.get("/qa/reviews.csv").streaming_content).decode())))
    assert {r["reviewer"] for r in rows} == {"alice"}
    assert len(rows) == len(CARD)
    greeting = next(r for r in rows if r["category"] == "greeting")
    assert (greeting["value"], greeting["na"], greeting["version"], greeting["failed"]) == (
        "0", "no", "1", "no")
    assert float(greeting["score_100"]) == Review.objects.get(reviewer=d["alice"]).score_100


def test_csv_needs_export_permission_and_respects_blind(double):
    d = double
    assert client_of(d["bob"]).get("/qa/reviews.csv").status_code == 403
    # A manager who is not a lead (lead permission taken away) and has not reviewed: blind.
    exporter = person("exporter", "viewer")
    from django.contrib.auth.models import Permission
    exporter.user_permissions.add(Permission.objects.get(codename="export_data"))
    rows = list(csv.DictReader(io.StringIO(b"".join(
        client_of(exporter).get("/qa/reviews.csv").streaming_content).decode())))
    assert rows == []


# --- pages ---------------------------------------------------------------------------------


def test_viewers_see_no_qa_forms_and_cannot_post(card):
    viewer = person("vic", "viewer")
    conv = conversations(1)[0]
    c = client_of(viewer)
    html = c.get(f"/conversations/{conv.pk}/").content.decode()
    assert "review-form" not in html and "QA note" not in html and ">QA<" not in html
    assert c.get("/qa/").status_code == 403
    assert c.get("/qa/agreement/").status_code == 403
    assert c.post(f"/conversations/{conv.pk}/review/", {"version": card.pk}).status_code == 403


def test_review_errors_are_shown_next_to_fields(card):
    alice = person("alice")
    conv = conversations(1)[0]
    f = flag(conv, "pii_leak")
    c = client_of(alice)
    r = c.post(f"/conversations/{conv.pk}/review/", {
        "version": card.pk, "action": "submit", "answer-greeting": "1", "answer-empathy": "7",
        "answer-accuracy": "na"})
    html = r.content.decode()
    assert r.status_code == 400
    assert 'id="err-empathy"' in html and 'id="err-accuracy"' in html
    assert "Unanswered: Closing" in html and 'id="err-closing"' in html
    assert f"No verdict on open flag(s) {f.pk}" in html
    assert 'value="1" id="ans-greeting-1" checked' in html  # what was given is kept
    assert not Review.objects.exists()


def test_draft_then_submit_through_the_queue_goes_to_the_next_item(card):
    alice = person("alice")
    c1, c2 = conversations(2)
    q = queue(card, channel_percent={"whatsapp": 100})
    queue_fill(queue=q)
    c = client_of(alice)
    r = c.post(f"/qa/queues/{q.pk}/next/")
    assert r.status_code == 302 and r.url == f"/conversations/{c1.pk}/?queue={q.pk}#review"
    msg = message(c1)
    r = c.post(f"/conversations/{c1.pk}/review/", {
        "version": card.pk, "queue": q.pk, "action": "draft", "answer-greeting": "1",
        f"note-label-{msg.pk}": "too formal"})
    assert r.status_code == 302 and "saved=1" in r.url
    html = c.get(f"/conversations/{c1.pk}/?queue={q.pk}").content.decode()
    assert 'value="1" id="ans-greeting-1" checked' in html and 'value="too formal"' in html
    r = c.post(f"/conversations/{c1.pk}/review/", {
        "version": card.pk, "queue": q.pk, "action": "submit",
        **{f"answer-{k}": str(v) for k, v in full().items()}})
    assert r.status_code == 302 and r.url == f"/conversations/{c2.pk}/?queue={q.pk}#review"
    assert Score.objects.filter(source="human", author="alice", conversation=c1).count() == 5
    page = c.get("/qa/").content.decode()
    assert "1 done" in page and "1 in progress" in page


def test_queue_editor_is_for_leads(card):
    lead, alice = person("lead", "manager"), person("alice")
    conversations(10, "sms")
    assert client_of(alice).get("/qa/queues/new/").status_code == 403
    c = client_of(lead)
    r = c.post("/qa/queues/new/", {"name": "SMS sample", "scorecard": card.scorecard.pk,
                                   "active": "on", "percent_sms": "100", "double_percent": "0",
                                   "flag_kinds": ["pii_leak"], "reviewers": [alice.pk]})
    assert r.status_code == 302, r.content.decode()[:2000]
    q = ReviewQueue.objects.get(name="SMS sample")
    assert q.channel_percent == {"sms": 100} and q.flag_kinds == ["pii_leak"]
    assert list(q.reviewers.all()) == [alice]
    assert c.post(f"/qa/queues/{q.pk}/fill/").status_code == 302
    assert QueueItem.objects.filter(queue=q).count() == 10
    bad = c.post(f"/qa/queues/{q.pk}/edit/", {"name": "SMS sample", "scorecard": card.scorecard.pk,
                                             "percent_sms": "150", "double_percent": "0"})
    assert bad.status_code == 400 and "less than or equal to 100" in bad.content.decode()
    assert client_of(alice).post(f"/qa/queues/{q.pk}/fill/").status_code == 403


def test_forms_need_csrf(card):
    alice = person("alice")
    conv = conversations(1)[0]
    c = Client(enforce_csrf_checks=True)
    c.force_login(alice)
    assert c.post(f"/conversations/{conv.pk}/review/", {"version": card.pk}).status_code == 403


# --- the agreement page: hand-computed figures (working in tests/scoring/test_qa.py) --------------


def cell(html: str, row_attr: str, css: str) -> str:
    """The text of the cell with class `css` in the table row carrying `row_attr`."""
    row = html.split(row_attr, 1)[1].split("</tr>", 1)[0]
    return row.split(f'class="{css}', 1)[1].split(">", 1)[1].split("<", 1)[0].strip()


def test_agreement_page_shows_the_hand_computed_figures_with_their_n(card):
    from tests.support.qa import WEEK1, auto_score, submit
    from tests.support.qa import conversation as conv_at

    alice, bob = person("alice"), person("bob")
    # A: greeting alice 111100 vs bob 111001 -> kappa 0.25, alpha 0.3125 on 6 items.
    # D: warmth x .3 .5 .7 .9 vs empathy y .25 .5 .75 .75 -> r 0.9439, rho 0.9487, n 4
    #    (alice's empathy 2 3 4 4 then (v-1)/4; bob's equal answers keep the mean).
    # E: tone_off_brand confirmed by both on conversation 1, false positive by alice on 2
    #    (bob confirms it) -> 3 of 4 verdicts = 75%, n 4 on 2 flags.
    greet_a, greet_b = [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 1]
    empathy = [2, 3, 4, 4, 3, 3]
    warmth = [0.3, 0.5, 0.7, 0.9]
    convs = []
    for i in range(6):
        conv = conv_at(WEEK1)
        convs.append(conv)
        verdicts_a, verdicts_b = [], []
        if i < 4:
            auto_score(message(conv), "warmth", warmth[i])
        if i < 2:
            f = flag(conv, "tone_off_brand")
            verdicts_a = [{"flag_id": f.pk, "verdict": "confirmed" if i == 0 else "false_positive"}]
            verdicts_b = [{"flag_id": f.pk, "verdict": "confirmed"}]
        submit(alice, conv, card, verdicts=verdicts_a, greeting=greet_a[i], empathy=empathy[i])
        submit(bob, conv, card, verdicts=verdicts_b, greeting=greet_b[i], empathy=empathy[i])
    page = client_of(alice).get("/qa/agreement/")
    html = page.content.decode()
    assert page.status_code == 200
    g = 'data-category="greeting"'
    assert cell(html, g, "figure kappa") == "0.25" and cell(html, g, "small kappa-n") == "6 items"
    assert cell(html, g, "figure alpha") == "0.31"  # 0.3125
    assert cell(html, g, "small alpha-n").startswith("6 items · 12 answers")
    # The items behind the disagreement link to their replays: conversations 4 and 6.
    row = html.split(g, 1)[1].split("</tr>", 1)[0]
    assert f'/conversations/{convs[3].pk}/' in row and f'/conversations/{convs[5].pk}/' in row
    assert f'/conversations/{convs[0].pk}/' not in row
    w = 'data-pair="warmth~empathy"'
    assert cell(html, w, "figure pearson") == "0.94" and cell(html, w, "small corr-n") == "4"
    assert cell(html, w, "figure spearman") == "0.95"
    t = 'data-kind="tone_off_brand"'
    assert cell(html, t, "figure prec") == "75%"
    assert cell(html, t, "small prec-n") == "4 verdicts on 2 flags"
    assert "<svg" in html and "Krippendorff&#x27;s alpha per category" in html
    # The date filter is in the URL: a period without these conversations has no figures.
    later = client_of(alice).get("/qa/agreement/", {"since": "2026-12-01"}).content.decode()
    assert 'data-category="greeting"' not in later and "No submitted reviews" in later
    assert client_of(alice).get("/qa/agreement/", {"since": "2026-12-01",
                                                   "until": "2026-11-01"}).status_code == 400


# --- the API per role -----------------------------------------------------------------------


def test_api_queues_take_next_and_reviews_per_role(card):
    alice, viewer = person("alice"), person("vic", "viewer")
    c1, c2 = conversations(2, "web")
    f = flag(c1, "pii_leak")
    q = queue(card, channel_percent={"web": 100})
    queue_fill(queue=q)
    api = client_of(alice)
    assert client_of(viewer).get("/api/qa/queues/").status_code == 403
    assert client_of(viewer).post("/api/qa/reviews/", {}, content_type="application/json"
                                  ).status_code == 403
    rows = api.get("/api/qa/queues/").json()["results"]
    assert [(r["name"], r["progress"]) for r in rows] == [
        ("q", {"to_do": 2, "in_progress": 0, "done": 0, "items": 2})]
    taken = api.post(f"/api/qa/queues/{q.pk}/take-next/").json()["slot"]
    assert taken["conversation"] == c1.pk and taken["reviewer"] == "alice"
    bad = api.post("/api/qa/reviews/", {"conversation": c1.pk, "version": card.pk,
                                        "answers": {"greeting": "maybe", "nope": 1}},
                   content_type="application/json")
    assert bad.status_code == 400
    errors = bad.json()
    assert {"answers.greeting", "answers.nope", "answers", "flags"} <= set(errors)
    ok = api.post("/api/qa/reviews/", {
        "conversation": c1.pk, "answers": {**full(), "closing": {"na": True}},
        "verdicts": [{"flag_id": f.pk, "verdict": "confirmed"}], "comment": "fine"},
        content_type="application/json")
    assert ok.status_code == 201, ok.content
    body = ok.json()
    assert body["status"] == "submitted" and body["version"] == 1 and body["scorecard"] == "support"
    answers = {a["category"]: (a["value"], a["na"]) for a in body["answers"]}
    assert answers["closing"] == (None, True)
    again = api.post("/api/qa/reviews/", {
        "conversation": c1.pk, "answers": {**full(), "closing": {"na": True}},
        "verdicts": [{"flag_id": f.pk, "verdict": "confirmed"}], "comment": "fine"},
        content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    detail = api.get(f"/api/qa/queues/{q.pk}/").json()
    assert detail["progress"] == {"to_do": 1, "in_progress": 0, "done": 1, "items": 2}
    assert detail["per_reviewer"] == [{"username": "alice", "in_progress": 0, "done": 1}]
    mine = api.get("/api/qa/reviews/", {"reviewer": "alice"}).json()["results"]
    assert [r["id"] for r in mine] == [body["id"]]
    assert api.get("/api/qa/reviews/", {"since": "2030-01-01"}).json()["results"] == []
    assert api.get("/api/qa/reviews/", {"since": "nope"}).status_code == 400
    assert api.get(f"/api/qa/reviews/{body['id']}/").json()["comment"] == "fine"
    assert api.post("/api/qa/reviews/", {"conversation": 10**9, "answers": {}},
                    content_type="application/json").status_code == 400


# --- review fixes: the blind rule at the source, scorecards, take-next, visibility ---------


def test_a_dismissal_in_a_double_review_stays_pending_until_the_last_slot_is_done(double):
    """Alice dismissed f2 in a double review: bob (blind) finds it open in every filter and
    in the incomplete-submit error; once bob submits, the flag is a false positive."""
    d = double
    bob = client_of(d["bob"])
    conv, f2 = d["conv"], d["f2"]
    assert [r["id"] for r in bob.get("/api/flags/", {"status": "false_positive"}
                                     ).json()["results"]] == []
    assert f2.pk in [r["id"] for r in bob.get("/api/flags/", {"status": "open"}
                                              ).json()["results"]]
    dismissed = bob.get("/inbox/", {"flag_status": "false_positive"}).content.decode()
    assert f"/conversations/{conv.pk}/" not in dismissed
    listed = bob.get("/api/conversations/", {"flag_status": "false_positive"}).json()["results"]
    assert listed == []
    row = next(r for r in bob.get("/api/conversations/").json()["results"]
               if r["conversation"]["id"] == conv.pk)
    assert {f["id"] for f in row["flags"]} >= {d["f1"].pk, f2.pk}
    r = bob.post(f"/conversations/{conv.pk}/review/", {
        "version": d["card"].pk, "action": "submit",
        **{f"answer-{k}": str(v) for k, v in full().items()},
        f"verdict-{d['f1'].pk}": "confirmed"})
    assert r.status_code == 400
    assert f"No verdict on open flag(s) {f2.pk}" in r.content.decode()
    assert Flag.objects.get(pk=f2.pk).status == "open"
    queue_review_submit(reviewer=d["bob"], conversation=conv, version=d["card"], answers=full(),
                        verdicts=[{"flag_id": d["f1"].pk, "verdict": "confirmed"},
                                  {"flag_id": f2.pk, "verdict": "false_positive"}])
    f2.refresh_from_db()
    assert f2.status == "false_positive" and f2.status_changed_by in {"alice", "bob"}
    assert bob.get("/api/flags/", {"status": "false_positive"}).json()["results"][0]["id"] == f2.pk


def test_a_pending_dismissal_does_not_override_a_later_status_change(double):
    from conversations.services import flag_set_status

    d = double
    flag_set_status(flag=Flag.objects.get(pk=d["f2"].pk), status="acknowledged", by="lead")
    queue_review_submit(reviewer=d["bob"], conversation=d["conv"], version=d["card"],
                        answers=full(), verdicts=[{"flag_id": d["f1"].pk, "verdict": "confirmed"},
                                                  {"flag_id": d["f2"].pk, "verdict": "confirmed"}])
    assert Flag.objects.get(pk=d["f2"].pk).status == "acknowledged"


def test_the_queues_scorecard_wins_over_the_reviewers_earlier_review(card):
    """Alice reviewed under the support card; a second queue uses another card: opened from
    that queue (or from her open slot in it) the replay and the API use the other card."""
    other = scorecard_create(key="short", name="Short", categories=CARD[:2], by="lead")
    alice = person("alice")
    conv = conversations(1, "web")[0]
    q1 = queue(card, name="first", channel_percent={"web": 100})
    q2 = queue(other, name="second", channel_percent={"web": 100})
    queue_fill(queue=q1)
    queue_fill(queue=q2)
    slot_take_next(queue=q1, reviewer=alice)
    queue_review_submit(reviewer=alice, conversation=conv, version=card, answers=full())
    slot_take_next(queue=q2, reviewer=alice)
    c = client_of(alice)
    for url in (f"/conversations/{conv.pk}/?queue={q2.pk}", f"/conversations/{conv.pk}/"):
        html = c.get(url).content.decode()
        assert f'name="version" value="{other.pk}"' in html, url
        assert 'name="answer-accuracy"' not in html
    r = c.post("/api/qa/reviews/", {"conversation": conv.pk, "answers": full(greeting=0)},
               content_type="application/json")
    assert r.status_code == 400 and "answers.accuracy" in r.json()  # not a category of "short"
    r = c.post("/api/qa/reviews/", {"conversation": conv.pk,
                                    "answers": {"greeting": 1, "empathy": 4}},
               content_type="application/json")
    assert r.status_code == 201 and r.json()["scorecard"] == "short"
    assert QueueSlot.objects.get(queue=q2, reviewer=alice).done_at is not None
    # Back in the first queue's context, her review under its card is shown again.
    html = c.get(f"/conversations/{conv.pk}/?queue={q1.pk}").content.decode()
    assert f'name="version" value="{card.pk}"' in html


def test_take_next_refuses_an_inactive_queue_and_a_reviewer_who_reviewed_outside(card):
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    c1, c2 = conversations(2, "web")
    q = queue(card, channel_percent={"web": 100}, double_percent=100)
    queue_fill(queue=q)
    assert slot_take_next(queue=q, reviewer=alice).item.conversation_id == c1.pk
    # Bob reviewed c1 outside the queue: he is not handed c1's second slot.
    queue_review_submit(reviewer=bob, conversation=c1, version=card, answers=full())
    assert slot_take_next(queue=q, reviewer=bob).item.conversation_id == c2.pk
    assert slot_take_next(queue=q, reviewer=carol).item.conversation_id == c1.pk
    q.active = False
    q.save()
    with pytest.raises(QueueError, match="not active"):
        slot_take_next(queue=q, reviewer=carol)
    r = client_of(carol).post(f"/qa/queues/{q.pk}/next/")
    assert r.status_code == 403 and "not active" in r.content.decode()
    r = client_of(carol).post(f"/api/qa/queues/{q.pk}/take-next/")
    assert r.status_code == 403 and "not active" in r.json()["detail"]


def test_viewers_see_a_dismissed_flags_real_status(card):
    alice, viewer = person("alice"), person("vic", "viewer")
    conv = conversations(1, "web")[0]
    f = flag(conv, "pii_leak")
    queue_review_submit(reviewer=alice, conversation=conv, version=card, answers=full(),
                        verdicts=[{"flag_id": f.pk, "verdict": "false_positive"}])
    row = client_of(viewer).get(f"/api/flags/{f.pk}/").json()
    assert row["status"] == "false_positive" and row["status_changed_by"] == "alice"
    # An annotator who has not reviewed it is still blind to it.
    assert client_of(person("bob")).get(f"/api/flags/{f.pk}/").json()["status"] == "open"


def test_disagreed_on_links_only_to_conversations_the_reviewer_judged(card):
    from tests.support.qa import submit

    alice, bob, carol, lead = person("alice"), person("bob"), person("carol"), person(
        "lead", "manager")
    c1, c2 = conversations(2, "web")
    submit(alice, c1, card, greeting=1)
    submit(bob, c1, card, greeting=0)
    submit(bob, c2, card, greeting=1)
    submit(carol, c2, card, greeting=0)

    def links(user):
        html = client_of(user).get("/qa/agreement/").content.decode()
        row = html.split('data-category="greeting"', 1)[1].split("</tr>", 1)[0]
        return {c.pk for c in (c1, c2) if f"/conversations/{c.pk}/" in row}

    assert links(alice) == {c1.pk}
    assert links(carol) == {c2.pk}
    assert links(bob) == links(lead) == {c1.pk, c2.pk}


def test_api_queues_show_what_the_qa_page_shows(card):
    alice, bob, lead = person("alice"), person("bob"), person("lead", "manager")
    conversations(2, "web")
    open_q = queue(card, name="open", channel_percent={"web": 100})
    bobs = queue(card, name="bobs", channel_percent={"web": 100})
    bobs.reviewers.add(bob)
    queue_fill(queue=open_q)
    queue_fill(queue=bobs)
    slot_take_next(queue=open_q, reviewer=alice)
    slot_take_next(queue=open_q, reviewer=bob)
    a = client_of(alice)
    assert [r["name"] for r in a.get("/api/qa/queues/").json()["results"]] == ["open"]
    assert a.get(f"/api/qa/queues/{bobs.pk}/").status_code == 404
    assert a.get(f"/api/qa/queues/{open_q.pk}/").json()["per_reviewer"] == [
        {"username": "alice", "in_progress": 1, "done": 0}]
    page = a.get("/qa/").content.decode()
    assert "bobs" not in page
    lc = client_of(lead)
    assert [r["name"] for r in lc.get("/api/qa/queues/").json()["results"]] == ["bobs", "open"]
    assert {p["username"] for p in lc.get(f"/api/qa/queues/{open_q.pk}/").json()["per_reviewer"]
            } == {"alice", "bob"}


def test_other_reviews_on_the_replay_cost_no_query_per_review(card):
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    lead = person("lead", "manager")
    conv = conversations(1, "web")[0]
    c = client_of(lead)

    def queries_with(n):
        for i in range(Review.objects.count(), n):
            queue_review_submit(reviewer=person(f"r{i}"), conversation=conv, version=card,
                                answers=full())
        with CaptureQueriesContext(conn) as ctx:
            assert c.get(f"/conversations/{conv.pk}/").status_code == 200
        return len(ctx.captured_queries)

    queries_with(1)  # warm: session, content types
    assert queries_with(1) == queries_with(4)


def test_one_broken_queue_does_not_stop_filling_the_others(card, capsys):
    from audit.qa_queues import queues_fill

    conversations(3, "web")
    queue(card, name="a-broken", channel_percent={"web": "all"})
    queue(card, name="b-fine", channel_percent={"web": 100})
    result = queues_fill()
    assert result["b-fine"] == 3 and result["a-broken"].startswith("error: ")
    assert QueueItem.objects.filter(queue__name="b-fine").count() == 3
    with pytest.raises(Exception, match="could not be filled: a-broken"):
        call_command("fill_qa_queues", "--no-progress")
    assert "a-broken: error" in capsys.readouterr().err


def test_bad_input_on_the_qa_pages_is_a_4xx_not_a_500(card):
    alice, lead = person("alice"), person("lead", "manager")
    conv = conversations(1, "web")[0]
    f = flag(conv, "pii_leak")
    a = client_of(alice)
    a.raise_request_exception = False
    assert a.get(f"/conversations/{conv.pk}/", {"queue": "²"}).status_code == 200
    assert a.get(f"/conversations/{conv.pk}/", {"queue": "9" * 40}).status_code == 200
    answers = {f"answer-{k}": str(v) for k, v in full().items()}
    r = a.post(f"/conversations/{conv.pk}/review/", {"version": card.pk, "verdict-²": "confirmed",
                                                     **answers})
    assert r.status_code == 400 and f"No verdict on open flag(s) {f.pk}" in r.content.decode()
    r = a.post(f"/conversations/{conv.pk}/review/", {"version": "abc", **answers})
    assert r.status_code == 400 and "not a scorecard version" in r.content.decode()
    for bad in ([1], {"value": {}}, {"value": [1]}):
        r = a.post("/api/qa/reviews/", {"conversation": conv.pk, "version": card.pk,
                                        "answers": {**full(), "greeting": bad}},
                   content_type="application/json")
        assert r.status_code == 400 and "answers.greeting" in r.json(), bad
    for path in ("/qa/agreement/", "/qa/reviews.csv"):
        for query in ({"until": "9999-12-31"}, {"since": "9999-12-31"}, {"since": "garbage"},
                      {"until": "0001-01-01"}):
            r = client_of(lead).get(path, query)
            assert r.status_code == 400, (path, query)
    assert client_of(lead).get("/qa/reviews.csv", {"until": "2030-01-01"}).status_code == 200
    lc = client_of(lead)
    r = lc.post("/qa/queues/new/", {"name": "far", "scorecard": card.scorecard.pk,
                                    "percent_web": "100", "double_percent": "0",
                                    "until": "9999-12-31"})
    assert r.status_code == 400 and "9998" in r.content.decode()
    # A queue already stored with the last day (admin, shell) still fills.
    far = queue(card, name="far", channel_percent={"web": 100},
                until=datetime(9999, 12, 31).date())
    assert lc.post(f"/qa/queues/{far.pk}/fill/").status_code == 302
    assert far.items.count() == 1
