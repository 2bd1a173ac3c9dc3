"""Outcome reports (issue 17): every figure of a hand-worked week sent through the signed
events webhook and the daily rollups; NPS and revenue in outcome.recorded; the team of a
handoff.assigned agent; a late conversation that changes an earlier day (repeat contact);
drill-down links whose inbox counts equal their figure; the comparison statistics."""

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from scipy import stats

from audit.dashboard_selectors import dashboard_period
from audit.inbox_filters import InboxFilters, inbox_queryset
from audit.outcome_models import OutcomeDaily
from audit.rollups import rollups_rebuild, rollups_refresh
from audit.selectors_outcomes import (
    Side,
    before_after,
    outcome_compare,
    outcome_groups,
    outcome_report,
    wilson,
)
from conversations.models import Conversation, DashboardDirtyDay, Message, Outcome
from handoffs.models import Handoff
from scoring.services import messages_score
from tests.audit.outcome_data import (
    DAY1,
    DAY2,
    DAY4,
    TODAY,
    deliver,
    late_events,
    week_events,
)
from tests.support.events import SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def secrets(settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}


@pytest.fixture
def week(client, secrets):
    deliver(client, week_events(), "outcomes-week")
    # Customer warmth, as the scoring task would compute it after the batch.
    messages_score(message_ids=list(Message.objects.values_list("pk", flat=True)))
    rollups_refresh()
    return {c.keys.get().key.split(":", 1)[1]: c for c in Conversation.objects.all()}


def period():
    return dashboard_period(days=7, today=TODAY)


def test_nps_revenue_and_team_are_stored_through_the_apply_path(week):
    a = Outcome.objects.get(external_id="o-a")
    assert (a.nps, a.revenue_amount, a.revenue_currency) == (10, Decimal("49.90"), "EUR")
    b = Outcome.objects.get(external_id="o-b")  # a JSON number amount
    assert (b.nps, b.revenue_amount, b.revenue_currency) == (8, Decimal("100"), "USD")
    handoff = Handoff.objects.get()
    assert (handoff.agent_id, handoff.agent_name, handoff.team, handoff.queue) == (
        "agent-7", "Maya Diaz", "Billing", "billing")


@pytest.mark.parametrize("data, problem", [
    ({"nps": 11}, "nps"), ({"nps": -1}, "nps"),
    ({"revenue": {"amount": "12.5"}}, "currency"),
    ({"revenue": {"amount": "1e5", "currency": "EUR"}}, "amount"),
    ({"revenue": {"amount": "5", "currency": "euro"}}, "currency"),
])
def test_bad_nps_or_revenue_is_refused_with_its_path_and_stores_nothing(client, secrets, data,
                                                                       problem):
    import json

    from conversations.models import RawEvent
    from tests.support.signing import events_headers

    body = json.dumps({"type": "outcome.recorded", "id": "bad", "data": {
        "conversation": {"channel": "web", "external_id": "x"}, **data}}).encode()
    response = client.post("/hooks/events/", body, content_type="application/json",
                           headers=events_headers(body, SECRET, msg_id="bad-outcome"))
    assert response.status_code == 400
    assert problem in json.dumps(response.json())
    assert not RawEvent.objects.exists()


def test_outcome_figures_equal_the_hand_worked_week(week):
    report = outcome_report(period=period())
    t = report.total
    assert t.conversations == 4  # A, B, C, D (A2 comes later)
    assert (t.resolved, t.contained, t.escalated, t.repeat, t.converted) == (3, 2, 2, 0, 2)
    assert t.resolved_rate == 0.75 and t.contained_rate == 0.5 and t.escalation_rate == 0.5
    assert t.first_response.n == 3 and sorted(t.first_response.values) == [10.0, 60.0, 120.0]
    assert t.first_response.p50 == 60.0
    assert t.first_response.p90 == pytest.approx(60 + 0.8 * 60)
    assert list(t.first_human.values) == [600.0]
    assert sorted(t.resolution_time.values) == [300.0, 1200.0, 1800.0]
    assert list(t.time_to_human.values) == [420.0]
    assert t.rated == 2 and t.csat == 4.5
    assert (t.nps_n, t.promoters, t.detractors) == (3, 1, 1) and t.nps == 0.0
    assert t.revenue == {"EUR": Decimal("69.90"), "USD": Decimal("100")}
    assert t.cost == Decimal("0.034") and t.costed == 3
    assert (t.handoffs, t.reached, t.handoff_resolved) == (1, 1, 1)
    # Per day: A and B on day 1, C and D on day 2.
    by_day = {f.key: f for f in report.by_day}
    assert by_day[DAY1.isoformat()].conversations == 2
    assert by_day[DAY2.isoformat()].resolved == 1
    assert len(report.by_day) == 7
    # By handoff outcome: B's handoff ended resolved; the others had none.
    buckets = {f.key: f.conversations for f in report.by_bucket}
    assert buckets == {"none": 3, "resolved": 1}
    # Worst cases: the lowest CSAT first, the slowest resolution first.
    assert [v for v, _ in t.worst_cases("lowest_csat")] == [4, 5]
    assert t.worst_cases("slowest")[0] == (1800.0, week["conv-a"].pk)
    assert t.worst_cases("expensive")[0][1] == week["conv-a"].pk


def test_customer_sentiment_start_and_end(week):
    t = outcome_report(period=period()).total
    # Only A has two customer messages: its first and last scored warmth.
    assert t.sentiment_n == 1
    from scoring.models import Score

    first, last = (Score.objects.get(message__provider_message_id=p, name="warmth").value
                   for p in ("a1", "a3"))
    assert t.warmth_start == pytest.approx(first) and t.warmth_end == pytest.approx(last)


def test_groups_per_agent_queue_team_and_release(week):
    p = period()
    agent, = outcome_groups(period=p, kind="agent")
    assert (agent.key, agent.label, agent.conversations, agent.handoffs, agent.resolved) == (
        "agent-7", "Maya Diaz", 1, 1, 1)
    assert agent.csat == 4.0 and list(agent.time_to_human.values) == [420.0]
    assert [(g.key, g.conversations) for g in outcome_groups(period=p, kind="queue")] == [
        ("billing", 1)]
    assert [(g.key, g.conversations) for g in outcome_groups(period=p, kind="team")] == [
        ("Billing", 1)]
    models = {g.key: g for g in outcome_groups(period=p, kind="model")}
    assert {k: g.conversations for k, g in models.items()} == {"gpt-4.1": 2, "gpt-4.1-mini": 1}
    assert models["gpt-4.1"].resolved == 2 and models["gpt-4.1"].cost == Decimal("0.030")


def test_a_late_conversation_changes_an_earlier_day(client, week):
    """Ann comes back on day 4: day 4 is marked by ingest; its rebuild marks day 1 (A is
    now a repeat contact, no longer contained); the next refresh rebuilds day 1."""
    deliver(client, late_events(), "outcomes-late")
    assert set(DashboardDirtyDay.objects.values_list("day", flat=True)) == {DAY4}
    rollups_refresh()
    assert set(DashboardDirtyDay.objects.values_list("day", flat=True)) == {DAY1}
    rollups_refresh()
    t = outcome_report(period=period()).total
    assert (t.conversations, t.repeat, t.contained, t.resolved) == (5, 1, 1, 3)
    assert t.rated == 3 and t.csat == pytest.approx(11 / 3)
    assert (t.nps_n, t.promoters, t.detractors) == (4, 1, 2) and t.nps == -25.0
    # The same as a full rebuild from the facts.
    before = list(OutcomeDaily.objects.order_by("day", "channel", "kind", "key").values_list(
        "day", "kind", "key", "conversations", "repeat", "contained", "resolved"))
    rollups_rebuild(days=(TODAY - DAY1).days + 30)
    after = list(OutcomeDaily.objects.order_by("day", "channel", "kind", "key").values_list(
        "day", "kind", "key", "conversations", "repeat", "contained", "resolved"))
    assert before == after


def _count(link: str) -> int:
    params = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    from audit.views import InboxFilterForm

    form = InboxFilterForm(params)
    assert form.is_valid(), form.errors
    return inbox_queryset(filters=form.filters()).count()


def test_every_drill_down_counts_what_its_figure_counts(client, week):
    from audit.outcome_views import report_view

    deliver(client, late_events(), "outcomes-late")
    rollups_refresh()
    rollups_refresh()
    view = report_view(outcome_report(period=period()))
    checked = 0
    for tile in view.tiles:
        if tile.count is not None:
            assert _count(tile.href) == tile.count, (tile.label, tile.href)
            checked += 1
    assert checked >= 10
    for table in view.tables:
        for row in table.rows:
            for cell in row:
                if cell.count is not None:
                    assert _count(cell.href) == cell.count, (table.caption, cell.href)
                    checked += 1
    assert checked >= 30


def test_inbox_outcome_filters_use_the_start_day(week):
    base = {"since": DAY2, "until": DAY2, "dates": "started"}
    assert inbox_queryset(filters=InboxFilters(**base)).count() == 2  # C, D
    assert inbox_queryset(filters=InboxFilters(**base, outcome="contained")).count() == 1
    assert inbox_queryset(filters=InboxFilters(**base, outcome="detractor")).count() == 1
    assert inbox_queryset(filters=InboxFilters(queue="billing")).get() == week["conv-b"]
    assert inbox_queryset(filters=InboxFilters(team="Billing")).get() == week["conv-b"]


def test_compare_two_releases_with_intervals_and_tests(week):
    p = period()
    fa, fb, rows = outcome_compare(a=Side("model", "gpt-4.1", p),
                                   b=Side("model", "gpt-4.1-mini", p))
    by = {c.name: c for c in rows}
    resolved = by["resolved"]
    assert (resolved.a.value, resolved.a.n, resolved.b.value, resolved.b.n) == (1.0, 2, 1.0, 1)
    # Hand-checked against scipy directly.
    assert resolved.p_value == pytest.approx(stats.fisher_exact([[2, 0], [1, 0]])[1])
    low, high = wilson(2, 2).low, wilson(2, 2).high
    assert resolved.a.low == low and high == 1.0 and 0.3 < low < 0.4  # 0.342
    assert by["first_response"].a.value == 35.0 and by["first_response"].b.value == 120.0
    assert by["first_response"].p_value == pytest.approx(
        stats.mannwhitneyu([60.0, 10.0], [120.0], alternative="two-sided").pvalue)
    assert by["csat"].a.n == 1 and by["csat"].b.n == 1


def test_before_after_a_date_splits_the_period(week):
    p = period()
    before, after = before_after(period=p, split=DAY2)
    assert (before.period.first, before.period.last) == (p.first, DAY1)
    assert (after.period.first, after.period.last) == (DAY2, p.last)
    fa, fb, rows = outcome_compare(a=before, b=after)
    assert (fa.conversations, fb.conversations) == (2, 2)
    assert {c.name: (c.a.value, c.b.value) for c in rows}["escalated"] == (0.5, 0.5)
    assert DAY2 - timedelta(days=1) == DAY1


def test_a_conversation_counts_once_whatever_its_handoffs_and_outcomes(client, week):
    """B gets a second handoff to the same agent and another outcome: the agent's row and
    the totals still count B once; no rate passes 100%."""
    from tests.audit.outcome_data import at, event, msg, outcome

    b = "conv-b"
    deliver(client, [
        event("handoff.requested", "hr-b2", b, "bob", at(DAY1, "11:40:00"),
              requested_by="customer"),
        event("handoff.assigned", "ha-b2", b, "bob", at(DAY1, "11:41:00"),
              agent={"id": "agent-7", "name": "Maya Diaz", "team": "Billing"}),
        msg(b, "bob", "b4", "human", at(DAY1, "11:45:00")),
        outcome("o-b3", b, "bob", at(DAY1, "11:50:00"), resolved=True, csat=3, nps=9),
    ], "outcomes-second-handoff")
    rollups_refresh()
    assert Handoff.objects.filter(conversation=week["conv-b"]).count() == 2
    p = period()
    agent, = outcome_groups(period=p, kind="agent")
    assert (agent.conversations, agent.handoffs, agent.resolved) == (1, 2, 1)
    assert agent.resolved_rate == 1.0
    t = outcome_report(period=p).total
    assert (t.conversations, t.resolved, t.escalated, t.rated) == (4, 3, 2, 2)
    # B's latest CSAT (3) and NPS (9) replace its earlier answers.
    assert t.csat == 4.0 and (t.nps_n, t.promoters) == (3, 2)
    for rate in (t.resolved_rate, t.contained_rate, t.escalation_rate, t.repeat_rate,
                 t.conversion_rate):
        assert 0 <= rate <= 1


def test_an_agent_who_wrote_without_a_handoff_counts_where_the_inbox_lists_him(
        client, week, as_role):
    """Maya (agent-7) also writes in C, which had no handoff (and gets none: C's customer
    never heard from the AI), and Leo (agent-9) writes in D: each counts under the agent on
    the per-agent page, and every counted number of that page
    opens an inbox that lists exactly that many conversations (one definition of an agent's
    conversations: outcome_rules.AGENT_SOURCES)."""
    from tests.audit.outcome_data import at, msg

    leo = msg("conv-d", "dan", "d3", "human", at(DAY2, "12:03:00"))
    leo["data"]["author"] = {"kind": "human", "id": "agent-9", "name": "Leo Park"}
    deliver(client, [msg("conv-c", "cat", "c2", "human", at(DAY2, "08:30:00")), leo],
            "outcomes-humans-without-handoff")
    rollups_refresh()
    groups = {g.key: g for g in outcome_groups(period=period(), kind="agent")}
    assert (groups["agent-7"].conversations, groups["agent-7"].handoffs) == (2, 1)
    assert not Handoff.objects.filter(conversation=week["conv-c"]).exists()
    assert groups["agent-9"].conversations == 1
    assert groups["agent-9"].label == "Leo Park"

    manager = as_role("manager")
    body = manager.get("/reports/per/agent/?days=30").content.decode()
    links = re.findall(r'<a href="([^"]+)" data-count="(\d+)">', body)
    assert len(links) >= 8  # per agent: conversations, resolved, CSAT, NPS, ...
    for href, count in links:
        inbox = manager.get(unescape(href)).content.decode()
        assert inbox.count("<tr data-conversation=") == int(count), unescape(href)
    assert any("agent=agent-9" in unescape(h) and c == "1" for h, c in links)


def test_the_report_read_from_the_buckets_equals_the_channel_rows(client, week):
    """The outcomes page reads only the rows per handoff outcome: every conversation is in
    one bucket, so per channel and in total they equal the `channel` rows, times and worst
    cases included (with the late conversation and a second channel)."""
    from audit.selectors_outcomes import ARRAYS, side_figures
    from tests.audit.outcome_data import at, msg

    deliver(client, late_events(), "outcomes-late")
    email = msg("conv-e", "eve", "e9", "customer", at(DAY2, "15:00:00"), "Hello?")
    email["data"]["conversation"]["channel"] = email["data"]["channel"] = "sms"
    email["data"]["conversation"]["customer_address"] = "+34600111222"
    deliver(client, [email], "outcomes-sms")
    rollups_refresh()
    rollups_refresh()
    p = period()
    report = outcome_report(period=p)
    assert {f.key for f in report.by_channel} == {"web", "sms"}
    pairs = [(report.total, Side("channel", "", p))] + [
        (f, Side("channel", "", dashboard_period(days=7, today=TODAY, channel=f.key)))
        for f in report.by_channel]
    for got, side in pairs:
        want = side_figures(side)
        assert (got.conversations, got.counts, got.sums, got.cost, got.revenue) == (
            want.conversations, want.counts, want.sums, want.cost, want.revenue)
        for name in ARRAYS:
            assert sorted(got.distribution(name).values) == sorted(
                want.distribution(name).values), name
        for name in ("expensive", "slowest", "lowest_csat", "longest_wait"):
            assert got.worst_cases(name) == want.worst_cases(name), name
    assert report.total.conversations == 6
