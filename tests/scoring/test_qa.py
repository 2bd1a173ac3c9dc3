"""QA annotation (issue 7), data layer: scorecard versions, review validation, idempotent
submit, human Score rows, flag verdicts, and the agreement / correlation / precision
figures on small examples worked out by hand (the working is in the comments)."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model

from conversations.models import AuthorKind, Direction
from scoring.models import Review, ReviewAnswer, Score, ScorecardCategory
from scoring.qa import (
    DEFAULT_CATEGORIES,
    Answer,
    FlagVerdict,
    MessageNote,
    QAError,
    review_draft_save,
    review_submit,
    scorecard_create,
    scorecard_default_ensure,
    scorecard_edit,
)
from scoring.qa_selectors import (
    conversation_reviews,
    qa_agreement,
    qa_auto_human_correlation,
    qa_flag_precision,
    qa_trends,
    scorecard_version_current,
)
from tests.support.qa import (
    CARD,
    WEEK1,
    auto_score,
    conversation,
    flag,
    full,
    message,
    submit,
)

pytestmark = pytest.mark.django_db

WEEK2 = WEEK1 + timedelta(days=7)

@pytest.fixture
def users():
    User = get_user_model()
    return {name: User.objects.create_user(username=name, password="x")
            for name in ("alice", "bob", "carol")}


@pytest.fixture
def card():
    return scorecard_create(key="support", name="Support", categories=CARD, by="lead")


# --- scorecards --------------------------------------------------------------------------


def test_default_scorecard_is_created_once_with_the_default_categories():
    first = scorecard_default_ensure()
    again = scorecard_default_ensure()
    assert again.pk == first.pk and first.number == 1
    keys = [c.key for c in first.categories.all()]
    assert keys == [c["key"] for c in DEFAULT_CATEGORIES]
    assert keys == ["greeting", "empathy", "brand_tone", "solution_offered", "handoff_needed",
                    "handoff_on_time", "accuracy", "closing"]
    accuracy = first.categories.get(key="accuracy")
    assert accuracy.critical and accuracy.scale == "yes_no"
    assert first.categories.get(key="handoff_needed").weight == 0


def test_editing_a_scorecard_makes_a_new_version_and_past_reviews_keep_theirs(users, card):
    conv = conversation()
    review = review_submit(reviewer=users["alice"], conversation=conv, version=card,
                           answers=full(empathy=4))
    # v2: empathy becomes yes/no and weighs 1, closing goes, a custom category comes.
    v2 = scorecard_edit(scorecard=card.scorecard, by="lead", note="simpler empathy", categories=[
        {"key": "greeting", "scale": "yes_no"},
        {"key": "empathy", "scale": "yes_no", "weight": 1},
        {"key": "accuracy", "scale": "yes_no", "weight": 3, "critical": True},
        {"key": "refund_policy", "label": "Refund policy followed", "scale": "yes_no",
         "na_allowed": True},
    ])
    assert v2.number == 2 and v2.scorecard_id == card.scorecard_id
    assert scorecard_version_current(scorecard=card.scorecard) == v2
    # The past review still points at v1, whose categories are unchanged.
    review.refresh_from_db()
    assert review.version_id == card.pk
    empathy = ReviewAnswer.objects.get(review=review, category__key="empathy")
    assert (empathy.value, empathy.category.scale, empathy.category.weight) == (4, "one_five", 2)
    assert sorted(card.categories.values_list("key", flat=True)) == [
        "accuracy", "closing", "empathy", "greeting"]
    assert ScorecardCategory.objects.filter(version=v2, key="empathy").get().scale == "yes_no"
    # A review on v2 beside it; the v1 review is untouched.
    review_submit(reviewer=users["alice"], conversation=conv, version=v2,
                  answers={"greeting": "yes", "empathy": "no", "accuracy": True,
                           "refund_policy": {"na": True}})
    assert Review.objects.filter(conversation=conv).count() == 2
    review.refresh_from_db()
    assert review.score_100 == pytest.approx(100 * (1 + 2 * 0.75 + 3 + 1) / 7, abs=0.01)


def test_scorecard_definitions_are_validated(card):
    with pytest.raises(QAError) as exc:
        scorecard_edit(scorecard=card.scorecard, categories=[
            {"key": "greeting", "scale": "yes_no"},
            {"key": "greeting", "scale": "one_five"},
            {"key": "Bad Key!", "scale": "yes_no"},
            {"key": "tone", "scale": "1-10"},
            {"key": "speed", "scale": "yes_no", "weight": -1},
            {"key": "overall", "scale": "yes_no"},
            {"key": "x", "scale": "yes_no", "colour": "red"},
        ])
    errors = exc.value.message_dict
    assert set(errors) == {"categories[1].key", "categories[2].key", "categories[3].scale",
                           "categories[4].weight", "categories[5].key", "categories[6]"}
    assert "appears twice" in errors["categories[1].key"][0]
    assert "reserved" in errors["categories[5].key"][0]
    assert card.scorecard.versions.count() == 1  # nothing written
    with pytest.raises(QAError, match="weigh more than 0"):
        scorecard_create(key="empty", name="Empty",
                         categories=[{"key": "a", "scale": "yes_no", "weight": 0}])
    with pytest.raises(QAError, match="exists"):
        scorecard_create(key="support", name="Again", categories=CARD)


# --- reviews -----------------------------------------------------------------------------


def test_review_answers_are_validated_with_every_problem_named(users, card):
    conv, other = conversation(), conversation()
    open_flag = flag(conv)
    foreign_flag = flag(other)
    foreign_message = message(other)
    with pytest.raises(QAError) as exc:
        review_submit(
            reviewer=users["alice"], conversation=conv, version=card,
            answers={"greeting": 3, "empathy": 6, "accuracy": {"na": True},
                     "speed": 1},
            notes=[MessageNote(message_id=foreign_message.pk, label="rude")],
            verdicts=[FlagVerdict(flag_id=foreign_flag.pk, verdict="confirmed")],
        )
    errors = exc.value.message_dict
    assert "is not yes or no" in errors["answers.greeting"][0]
    assert "from 1 to 5" in errors["answers.empathy"][0]
    assert "N/A is not allowed" in errors["answers.accuracy"][0]
    assert "Not a category" in errors["answers.speed"][0]
    assert "Closing" in errors["answers"][0]  # unanswered
    assert f"not in conversation {conv.pk}" in errors["notes[0].message_id"][0]
    assert f"not a flag of conversation {conv.pk}" in errors[f"flags.{foreign_flag.pk}"][0]
    assert str(open_flag.pk) in errors["flags"][0]  # no verdict on an open flag
    assert not Review.objects.exists() and not Score.objects.exists()

    with pytest.raises(QAError) as exc:
        review_submit(reviewer=users["alice"], conversation=conv, version=card,
                      answers={**full(), "closing": {"value": 1, "na": True},
                               "empathy": True},
                      verdicts=[{"flag_id": open_flag.pk, "verdict": "maybe"}])
    errors = exc.value.message_dict
    assert "not both" in errors["answers.closing"][0]
    assert "from 1 to 5" in errors["answers.empathy"][0]  # a bool is not a 1-5 answer
    assert "not a verdict" in errors[f"flags.{open_flag.pk}"][0]


def test_draft_then_idempotent_submit_then_correction(users, card):
    conv = conversation()
    alice = users["alice"]
    msg = message(conv)
    draft = review_draft_save(reviewer=alice, conversation=conv, version=card,
                              answers={"empathy": 2},
                              notes=[{"message_id": msg.pk, "label": "cold",
                                      "comment": "no apology"}])
    assert draft.status == "draft" and draft.submitted_at is None
    assert not Score.objects.exists()  # a draft writes no Score
    review = review_submit(reviewer=alice, conversation=conv, version=card,
                           answers=full(empathy=2, closing={"na": True}),
                           notes=[MessageNote(message_id=msg.pk, label="cold")])
    assert review.pk == draft.pk and review.status == "submitted"
    first_submitted = review.submitted_at
    scores = dict(Score.objects.values_list("name", "value"))
    again = review_submit(reviewer=alice, conversation=conv, version=card,
                          answers=full(empathy=2, closing={"na": True}),
                          notes=[MessageNote(message_id=msg.pk, label="cold")])
    assert again.pk == review.pk and again.submitted_at == first_submitted
    assert Review.objects.count() == 1 and review.message_notes.count() == 1
    assert dict(Score.objects.values_list("name", "value")) == scores
    assert "qa:closing" not in scores  # N/A writes no number
    with pytest.raises(QAError, match="submitted"):
        review_draft_save(reviewer=alice, conversation=conv, version=card, answers={})
    # A correction: closing answered now, empathy changed.
    review_submit(reviewer=alice, conversation=conv, version=card, answers=full(empathy=5))
    scores = dict(Score.objects.values_list("name", "value"))
    assert scores["qa:empathy"] == 1.0 and scores["qa:closing"] == 1.0
    assert Review.objects.get().submitted_at == first_submitted
    # ... and back to N/A removes its number again.
    review_submit(reviewer=alice, conversation=conv, version=card,
                  answers=full(closing={"na": True}))
    assert not Score.objects.filter(name="qa:closing").exists()


def test_submit_writes_human_scores_beside_the_automated_ones(users, card):
    conv = conversation()
    auto = auto_score(message(conv), "warmth", 0.8)
    review = review_submit(reviewer=users["bob"], conversation=conv, version=card,
                           answers=full(greeting="no", empathy=4, accuracy="yes", closing=1))
    human = Score.objects.filter(source="human")
    assert {s.name: s.value for s in human} == pytest.approx({
        "qa:greeting": 0.0, "qa:empathy": 0.75, "qa:accuracy": 1.0, "qa:closing": 1.0,
        # (1*0 + 2*0.75 + 3*1 + 1*1) / 7 = 5.5 / 7 = 78.57 / 100
        "qa:overall": 0.7857,
    })
    s = human.get(name="qa:empathy")
    assert (s.subject_type, s.subject_id, s.conversation_id, s.author, s.message_id) == (
        "conversation", conv.pk, conv.pk, "bob", None)
    assert s.explanations["answer"] == 4 and s.explanations["review"] == review.pk
    assert s.occurred_at == conv.started_at and s.brand is not None
    assert Score.objects.get(pk=auto.pk).source == "auto"  # untouched, side by side
    assert list(conv.scores.order_by("source").values_list("source", flat=True).distinct()) == [
        "auto", "human"]


def test_weighted_result_and_a_failing_critical_category_fails_the_review(users, card):
    # greeting yes 1, empathy 4 -> 0.75, accuracy yes 1, closing N/A (left out):
    # (1*1 + 2*0.75 + 3*1) / (1 + 2 + 3) = 5.5 / 6 = 91.67
    ok = submit(users["alice"], conversation(), card, empathy=4, closing={"na": True})
    assert ok.score_100 == pytest.approx(91.67) and not ok.failed
    # accuracy no: (1 + 1.5 + 0) / 6 = 41.67, and the critical category fails the review
    bad = submit(users["alice"], conversation(), card, empathy=4, accuracy=0,
                 closing={"na": True})
    assert bad.score_100 == pytest.approx(41.67)
    assert bad.failed and bad.failed_categories == ["accuracy"]
    # empathy is not critical: a 1 lowers the result but fails nothing
    low = submit(users["alice"], conversation(), card, empathy=1)
    assert low.score_100 == pytest.approx(100 * 5 / 7, abs=0.01) and not low.failed


def test_flag_verdicts_set_false_positives_through_the_flag_service(users, card):
    conv = conversation()
    msg = message(conv)
    tone = flag(conv, "tone_off_brand", subject_id=msg.pk)
    pii = flag(conv, "pii_leak", subject_id=msg.pk)
    review = submit(users["carol"], conv, card, verdicts=[
        FlagVerdict(flag_id=tone.pk, verdict="confirmed", comment="really off"),
        {"flag_id": pii.pk, "verdict": "false_positive", "comment": "our own number"},
    ])
    tone.refresh_from_db()
    pii.refresh_from_db()
    assert tone.status == "open"
    assert (pii.status, pii.status_changed_by) == ("false_positive", "carol")
    assert f"QA review {review.pk}" in pii.note
    assert sorted(review.flag_verdicts.values_list("kind", "verdict")) == [
        ("pii_leak", "false_positive"), ("tone_off_brand", "confirmed")]
    conv.refresh_from_db()
    assert conv.open_flag_rank == 3  # only the confirmed medium flag is still active
    # A second reviewer need not judge the flag that is no longer open.
    submit(users["alice"], conv, card, verdicts=[FlagVerdict(tone.pk, "confirmed")])
    assert [r.reviewer.username for r in conversation_reviews(conversation=conv)] == [
        "carol", "alice"]


# --- agreement and calibration: hand-computed ---------------------------------------------


def test_agreement_figures_match_the_hand_computed_ones(users, card):
    alice, bob = users["alice"], users["bob"]

    # A. greeting (yes/no), alice first and bob second on six conversations:
    #    alice 1 1 1 1 0 0
    #    bob   1 1 1 0 0 1
    #    Cohen: p_o = 4/6; marginals both 4/6 yes, 2/6 no; p_e = 16/36 + 4/36 = 20/36;
    #    kappa = (24/36 - 20/36) / (16/36) = 0.25.
    #    Krippendorff nominal: coincidences o_11 = 6, o_00 = 2, o_10 = o_01 = 2; n_1 = 8,
    #    n_0 = 4, n = 12; alpha = 1 - (n - 1)(o_10 + o_01) / (2 n_1 n_0) = 1 - 44/64 = 0.3125.
    # B. empathy (1-5) on the first four of them:
    #    alice 5 4 2 3
    #    bob   4 4 1 3
    #    Linear-weighted Cohen: w = |i - j| / 4. Observed sum w*p = (1/4 + 1/4) / 4 = 0.125;
    #    expected with marginals alice {2,3,4,5: 1/4 each}, bob {1: 1/4, 3: 1/4, 4: 1/2}:
    #    (1/4)(1.5 + 1.0 + 1.0 + 2.0) / 4 = 0.34375; kappa = 1 - 0.125 / 0.34375 = 7/11
    #    = 0.6364.
    #    Krippendorff ordinal: value counts n_1..n_5 = 1 1 2 3 1 (n = 8); delta(c,k) = sum of
    #    n_g for g in c..k minus (n_c + n_k)/2, squared. Observed: units (5,4) and (2,1) give
    #    2*delta^2(4,5) + 2*delta^2(1,2) = 2*4 + 2*1 = 10. Expected: sum over c<k of
    #    n_c n_k delta^2 = 1 + 12.5 + 75 + 49 + 4.5 + 48 + 36 + 37.5 + 40.5 + 12 = 316, both
    #    orders 632. alpha = 1 - (n - 1) * 10 / 632 = 1 - 70/632 = 0.8892.
    greet_a, greet_b = [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 1]
    emp_a, emp_b = [5, 4, 2, 3, 3, 3], [4, 4, 1, 3, None, None]
    for i in range(6):
        conv = conversation()
        submit(alice, conv, card, greeting=greet_a[i], empathy=emp_a[i])
        # empathy of bob's last two is left out by answering on a second scorecard below
        if emp_b[i] is not None:
            submit(bob, conv, card, greeting=greet_b[i], empathy=emp_b[i])
        else:
            other = scorecard_default_ensure()
            review_submit(reviewer=bob, conversation=conv, version=other, answers={
                "greeting": greet_b[i], "empathy": 3, "brand_tone": 3,
                "solution_offered": {"na": True}, "handoff_needed": 0,
                "handoff_on_time": {"na": True}, "accuracy": 1, "closing": {"na": True}})
    # The second scorecard shares the keys: restrict to "support" for B, where alice's
    # empathy 3 3 on the last two conversations has no second answer (one reviewer: not
    # pairable) and so does not count.
    figures = {f["category"]: f for f in qa_agreement(scorecard=card.scorecard)}
    assert figures["empathy"]["kappa_n"] == 4 and figures["empathy"]["alpha_n"] == 4
    assert figures["empathy"]["cohen_kappa"] == pytest.approx(7 / 11, abs=1e-4)
    assert figures["empathy"]["krippendorff_alpha"] == pytest.approx(1 - 70 / 632, abs=1e-4)
    assert figures["empathy"]["alpha_level"] == "ordinal"
    assert figures["greeting"]["kappa_n"] == 4  # the "support" scorecard alone: 4 pairs
    everything = {f["category"]: f for f in qa_agreement()}
    g = everything["greeting"]
    assert (g["kappa_n"], g["alpha_n"], g["reviewers"]) == (6, 6, 2)
    assert g["cohen_kappa"] == pytest.approx(0.25, abs=1e-4)
    assert g["krippendorff_alpha"] == pytest.approx(0.3125, abs=1e-4)
    assert g["alpha_level"] == "nominal" and g["kappa_weights"] == "none"

    # C. accuracy (yes/no) with three reviewers and gaps, on new conversations (week 2):
    #    u1: alice 1, bob 1, carol 1     u2: alice 1, bob 0, carol 1
    #    u3: alice 0, bob 0              u4: alice 1 (alone: not pairable)
    #    Coincidences (each pair weighs 1/(m - 1)): u1 gives o_11 += 3; u2 gives o_11 += 1,
    #    o_10 += 1, o_01 += 1; u3 gives o_00 += 2. n_1 = 5, n_0 = 3, n = 8.
    #    alpha = 1 - 7 * 2 / (2 * 5 * 3) = 1 - 14/30 = 0.5333.
    #    Cohen's kappa: only u3 has exactly two reviewers, both "no": p_o = p_e = 1, kappa
    #    undefined (None) on n = 1.
    rows = [{"alice": 1, "bob": 1, "carol": 1}, {"alice": 1, "bob": 0, "carol": 1},
            {"alice": 0, "bob": 0}, {"alice": 1}]
    for row in rows:
        conv = conversation(WEEK2)
        for name, value in row.items():
            submit(users[name], conv, card, accuracy=value)
    acc = {f["category"]: f for f in qa_agreement(start=WEEK2)}["accuracy"]
    assert (acc["alpha_n"], acc["alpha_values"], acc["reviewers"], acc["items_reviewed"]) == (
        3, 8, 3, 4)
    assert acc["krippendorff_alpha"] == pytest.approx(1 - 14 / 30, abs=1e-4)
    assert acc["kappa_n"] == 1 and acc["cohen_kappa"] is None

    # Per week: week 1 holds A/B, week 2 holds C.
    trends = qa_trends(scorecard=card.scorecard)
    assert [t["week"] for t in trends] == [date(2026, 11, 2), date(2026, 11, 9)]
    week2 = {f["category"]: f for f in trends[1]["agreement"]}
    assert week2["accuracy"]["krippendorff_alpha"] == pytest.approx(0.5333, abs=1e-4)
    week1 = {f["category"]: f for f in trends[0]["agreement"]}
    assert week1["empathy"]["cohen_kappa"] == pytest.approx(7 / 11, abs=1e-4)


def test_auto_vs_human_correlation_matches_the_hand_computed_one(users, card):
    # D. warmth (mean over each conversation's outbound messages) vs human empathy (mean of
    #    the reviewers' answers, (v - 1) / 4):
    #      conv  warmth msgs   x     empathy answers      y
    #      c1    0.2, 0.4      0.3   2                    0.25
    #      c2    0.5, 0.5      0.5   3                    0.5
    #      c3    0.6, 0.8      0.7   3 (alice), 5 (bob)   (0.5 + 1.0)/2 = 0.75
    #      c4    0.9, 0.9      0.9   4                    0.75
    #    Pearson: dx = -.3 -.1 .1 .3, dy = -.3125 -.0625 .1875 .1875 (means .6, .5625);
    #    sum dxdy = .175, sum dx^2 = .2, sum dy^2 = .171875; r = .175 / sqrt(.034375)
    #    = 0.9439.
    #    Spearman: ranks x 1 2 3 4, y 1 2 3.5 3.5; dx = -1.5 -.5 .5 1.5, dy = -1.5 -.5 1 1;
    #    rho = 4.5 / sqrt(5 * 4.5) = 0.9487.
    #    Rows that must not count: a customer message's warmth (0.0), and an older scorer
    #    version's warmth (0.95) on c1's first message, superseded by the current 0.2.
    warmth = [(0.2, 0.4), (0.5, 0.5), (0.6, 0.8), (0.9, 0.9)]
    empathy = [{"alice": 2}, {"alice": 3}, {"alice": 3, "bob": 5}, {"alice": 4}]
    for i, (values, answers) in enumerate(zip(warmth, empathy, strict=True)):
        conv = conversation()
        for j, v in enumerate(values):
            msg = message(conv, author_kind=AuthorKind.AI if j == 0 else AuthorKind.HUMAN)
            if i == 0 and j == 0:
                auto_score(msg, "warmth", 0.95, author="v0")
            auto_score(msg, "warmth", v)
        auto_score(message(conv, author_kind=AuthorKind.CUSTOMER,
                           direction=Direction.INBOUND), "warmth", 0.0)
        for name, value in answers.items():
            submit(users[name], conv, card, empathy=value)
    figures = {(f["auto"], f["human"]): f for f in qa_auto_human_correlation()}
    w = figures[("warmth", "empathy")]
    assert w["n"] == 4
    assert w["pearson"] == pytest.approx(0.175 / 0.034375 ** 0.5, abs=1e-4)  # 0.9439
    assert w["spearman"] == pytest.approx(4.5 / 22.5 ** 0.5, abs=1e-4)  # 0.9487
    # No brand_tone answers in this scorecard: nothing to correlate, said with n = 0.
    assert figures[("brand_tone", "brand_tone")] == {
        "auto": "brand_tone", "human": "brand_tone", "n": 0, "pearson": None,
        "pearson_p": None, "spearman": None, "spearman_p": None}
    # greeting_signoff was never scored: n 0 too.
    assert figures[("greeting_signoff", "greeting")]["n"] == 0
    assert qa_auto_human_correlation(start=WEEK2)[0]["n"] == 0


def test_flag_precision_from_verdicts_per_kind_and_week(users, card):
    # E. week 1: tone_off_brand flags f1 (alice: confirmed, bob: confirmed) and f2 (alice:
    #    false positive) -> 2 / (2 + 1) = 0.6667 on n = 3 verdicts about 2 flags;
    #    pii_leak f3 (alice and bob: false positive) -> 0 / 2 = 0.0 on n = 2 about 1 flag.
    #    week 2: tone_off_brand f4 (carol: confirmed) -> 1.0 on n = 1.
    c1, c2 = conversation(), conversation()
    m1, m2 = message(c1), message(c2)
    f1 = flag(c1, "tone_off_brand", m1.pk)
    f2 = flag(c2, "tone_off_brand", m2.pk)
    f3 = flag(c2, "pii_leak", m2.pk)
    submit(users["alice"], c1, card, verdicts=[FlagVerdict(f1.pk, "confirmed")])
    submit(users["bob"], c1, card, verdicts=[FlagVerdict(f1.pk, "confirmed")])
    submit(users["alice"], c2, card, verdicts=[FlagVerdict(f2.pk, "false_positive"),
                                               FlagVerdict(f3.pk, "false_positive")])
    # bob judges f3 only after alice closed it as false positive (f2 too is no longer open)
    submit(users["bob"], c2, card, verdicts=[FlagVerdict(f3.pk, "false_positive")])
    c3 = conversation(WEEK2)
    f4 = flag(c3, "tone_off_brand")
    submit(users["carol"], c3, card, verdicts=[FlagVerdict(f4.pk, "confirmed")])

    week1 = {f["kind"]: f for f in qa_flag_precision(end=WEEK2)}
    assert week1["tone_off_brand"] == {"kind": "tone_off_brand", "confirmed": 2,
                                       "false_positive": 1, "n": 3, "flags": 2,
                                       "precision": 0.6667}
    assert week1["pii_leak"]["precision"] == 0.0 and week1["pii_leak"]["n"] == 2
    assert week1["pii_leak"]["flags"] == 1
    total = {f["kind"]: f for f in qa_flag_precision()}
    assert (total["tone_off_brand"]["n"], total["tone_off_brand"]["precision"]) == (4, 0.75)
    trends = qa_trends()
    assert [t["week"] for t in trends] == [date(2026, 11, 2), date(2026, 11, 9)]
    assert trends[1]["precision"] == [{"kind": "tone_off_brand", "confirmed": 1,
                                       "false_positive": 0, "n": 1, "flags": 1,
                                       "precision": 1.0}]
    # A draft's verdicts do not count.
    c4 = conversation(WEEK2)
    f5 = flag(c4, "pii_leak")
    review_draft_save(reviewer=users["alice"], conversation=c4, version=card, answers={},
                      verdicts=[FlagVerdict(f5.pk, "false_positive")])
    assert "pii_leak" not in {f["kind"] for f in qa_flag_precision(start=WEEK2)}
    f5.refresh_from_db()
    assert f5.status == "open"  # nor does a draft touch the flag


def test_answers_accept_the_forms_a_form_or_api_sends(users, card):
    conv = conversation()
    review = review_submit(reviewer=users["alice"], conversation=conv, version=card, answers={
        "greeting": Answer(value="Yes", comment="warm hello"), "empathy": "4",
        "accuracy": {"value": False, "comment": "wrong delivery date"},
        "closing": {"na": True}})
    answers = {a.category.key: a for a in review.answers.select_related("category")}
    assert (answers["greeting"].value, answers["greeting"].comment) == (1, "warm hello")
    assert answers["empathy"].value == 4 and answers["accuracy"].value == 0
    assert answers["closing"].na and answers["closing"].value is None
    assert review.failed


def test_correlation_needs_three_conversations_and_variation_on_both_sides(users, card):
    def figure():
        return {(f["auto"], f["human"]): f
                for f in qa_auto_human_correlation()}[("warmth", "empathy")]

    for x, empathy in ((0.2, 3), (0.8, 3)):
        conv = conversation()
        auto_score(message(conv), "warmth", x)
        submit(users["alice"], conv, card, empathy=empathy)
    assert (figure()["n"], figure()["pearson"]) == (2, None)  # under MIN_CORRELATION_N
    conv = conversation()
    auto_score(message(conv), "warmth", 0.5)
    submit(users["alice"], conv, card, empathy=3)
    # y constant: nothing to correlate
    assert (figure()["n"], figure()["pearson"], figure()["spearman"]) == (3, None, None)
    submit(users["bob"], conv, card, empathy=5)
    # x .2 .8 .5, y .5 .5 .75: dx -.3 .3 0, dy -1/12 -1/12 1/6 -> sum dxdy 0 -> r = 0
    assert figure()["pearson"] == pytest.approx(0.0, abs=1e-9)


def _race(n: int, work) -> list:
    """Run work() in n threads released together; each thread closes its own connection."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(n)
    results: list = []
    errors: list = []

    def run():
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:  # reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_racing_submits_and_default_scorecards_make_one_of_each():
    versions = _race(6, scorecard_default_ensure)
    assert len({v.pk for v in versions}) == 1
    default = versions[0]
    assert default.scorecard.versions.count() == 1
    alice = get_user_model().objects.create_user(username="alice", password="x")
    conv = conversation()
    f = flag(conv, "pii_leak")
    answers = {"greeting": 1, "empathy": 4, "brand_tone": 5, "solution_offered": 1,
               "handoff_needed": 0, "handoff_on_time": {"na": True}, "accuracy": 1,
               "closing": 1}
    reviews = _race(6, lambda: review_submit(
        reviewer=alice, conversation=conv, version=default, answers=answers,
        verdicts=[FlagVerdict(f.pk, "false_positive")]))
    assert len({r.pk for r in reviews}) == 1
    review = Review.objects.get()
    assert review.answers.count() == 8 and review.flag_verdicts.count() == 1
    # 7 answered categories (handoff_on_time N/A) + qa:overall
    assert Score.objects.filter(source="human", author="alice").count() == 8
    f.refresh_from_db()
    assert (f.status, f.status_changed_by) == ("false_positive", "alice")
