"""The dashboards page and the CSV export, on conversations played through the real webhook:
hand-checked figures, links that open the conversations behind them, permissions per role,
masking, streaming, and query counts that do not grow with the data."""

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.charts import Point, Series, bar_chart, line_chart, nice_max
from audit.dashboard_selectors import dashboard, dashboard_period
from audit.inbox_filters import InboxFilters, inbox_queryset
from audit.masking import mask_address
from audit.rollups import rollups_refresh
from conversations.models import Conversation
from demo.scenarios import BUSINESS, REFERENCE_WEEK, scenario_customer, scenario_get
from scoring.models import BrandVoice, ScoreDaily
from tests.support.events import PATH, SECRET
from tests.support.scenarios import play
from tests.support.signing import events_headers

pytestmark = pytest.mark.django_db

TODAY = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # the Sunday after REFERENCE_WEEK's Monday
WEEK = {"since": "2026-11-16", "until": "2026-11-22"}
KEYS = {
    "resolved": "web-on-time",  # web: requested 0.3 min, first human reply at 3 min
    "abandoned": "whatsapp-dropped-at-close",  # dropped, no AI message (handoff only)
    "returned": "whatsapp-returned-to-ai",
    "none": "whatsapp-missed-spanish",  # the AI talked, no handoff
}
# (scenario, model, prompt version, cost) for the AI steps; (scenario, csat, resolved).
STEPS = [
    ("resolved", "gpt-4.1", "v12", "0.010"),
    ("returned", "gpt-4.1", "v13", "0.020"),
    ("returned", "gpt-4.1-mini", "v13", "0.001"),
    ("none", "gpt-4.1-mini", "v13", "0.003"),
]
OUTCOMES = [("resolved", 5, None), ("abandoned", 1, None), ("returned", 4, True),
            ("none", 2, False)]


def _ref(key: str) -> dict[str, str]:
    scenario = scenario_get(key)
    return {"channel": scenario.channel, "external_id": f"scn-{key}",
            "business_address": BUSINESS[scenario.channel],
            "customer_address": scenario_customer(scenario)}


def _deliver(client: Client, events: list[dict], delivery_id: str) -> None:
    body = json.dumps(events).encode()
    response = client.post(PATH, body, content_type="application/json",
                           headers=events_headers(body, SECRET, msg_id=delivery_id))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "processed", response.json()


def _ai_and_outcomes(client: Client) -> None:
    at = (REFERENCE_WEEK + timedelta(hours=1)).isoformat()
    events = [
        {"type": "ai.step", "id": f"step-{i}", "timestamp": at, "data": {
            "conversation": _ref(KEYS[which]), "operation": "chat", "request_model": model,
            "response_model": model, "prompt": {"name": "support", "version": version},
            "usage": {"input_tokens": 100, "output_tokens": 20}, "cost": float(cost)}}
        for i, (which, model, version, cost) in enumerate(STEPS)
    ] + [
        {"type": "outcome.recorded", "id": f"outcome-{which}", "timestamp": at, "data": {
            "conversation": _ref(KEYS[which]), "csat": score,
            **({} if resolved is None else {"resolved": resolved})}}
        for which, score, resolved in OUTCOMES
    ]
    _deliver(client, events, "dashboards-ai-and-outcomes")


@pytest.fixture
def week(client, settings):
    """Four journeys of REFERENCE_WEEK through the webhook, then AI steps and outcomes."""
    for key in KEYS.values():
        play(client, settings, scenario_get(key))
    _ai_and_outcomes(client)
    rollups_refresh()  # what beat does every minute
    client.logout()
    return {which: Conversation.objects.get(keys__key=f"events:scn-{key}")
            for which, key in KEYS.items()}


@pytest.fixture
def today():
    with time_machine.travel(TODAY, tick=False):
        yield TODAY


def _week_board():
    return dashboard(period=dashboard_period(days=7, today=TODAY.date()), now=TODAY)


def test_handoff_figures_by_hand(week, today):
    board = _week_board()
    t = board.total
    assert (t.conversations_eligible, t.conversations_handed_off) == (4, 3)
    assert t.handoff_rate == 0.75
    assert (t.handoffs, t.conversations_dropped, t.conversations_returned) == (3, 1, 1)
    assert t.dropped_rate == pytest.approx(1 / 3)
    assert t.reached_human == 1
    assert t.time_to_human_p50 == pytest.approx(162) and t.time_to_human_p90 == pytest.approx(162)
    by_channel = {m.key: m for m in board.by_channel}
    assert by_channel["web"].handoff_rate == 1.0
    assert by_channel["whatsapp"].handoff_rate == pytest.approx(2 / 3)
    by_day = {m.key: m for m in board.by_day}
    assert len(board.by_day) == 7 and by_day["2026-11-16"].handoffs == 3
    assert sum(m.handoffs for m in board.by_day) == 3


def test_cost_resolution_csat_and_releases_by_hand(week, today):
    board = _week_board()
    c = board.costs
    assert (c.conversations, c.resolved, c.rated) == (4, 2, 4)  # web-on-time + returned
    assert c.cost == Decimal("0.034")
    assert c.cost_per_conversation == Decimal("0.0085")
    assert c.cost_per_resolved == Decimal("0.017")
    assert c.csat == pytest.approx(3.0)  # (5 + 1 + 4 + 2) / 4
    assert {b.key: (b.conversations, b.rated, b.csat) for b in board.csat} == {
        "none": (1, 1, 2.0), "resolved": (1, 1, 5.0), "abandoned": (1, 1, 1.0),
        "returned": (1, 1, 4.0),
    }
    models = [(r.key, r.conversations, r.handed_off, r.dropped, r.cost, r.csat)
              for r in board.models]
    assert models == [("gpt-4.1", 2, 2, 0, Decimal("0.030"), 4.5),
                      ("gpt-4.1-mini", 2, 1, 0, Decimal("0.004"), 3.0)]
    prompts = {r.key: (r.conversations, r.cost, r.handoff_rate) for r in board.prompts}
    assert prompts == {"v13": (2, Decimal("0.024"), 0.5), "v12": (1, Decimal("0.010"), 1.0)}


def test_a_channel_narrows_every_figure(week, today):
    board = dashboard(period=dashboard_period(days=7, channel="web", today=TODAY.date()),
                      now=TODAY)
    assert [m.key for m in board.by_channel] == ["web"]
    assert board.total.handoffs == 1 and board.costs.conversations == 1
    assert [r.key for r in board.models] == ["gpt-4.1"]
    # Outside the period nothing counts.
    later = dashboard(period=dashboard_period(days=7, today=date(2026, 12, 31)), now=TODAY)
    assert later.total.handoffs == 0 and later.costs.conversations == 0 and later.models == []


def _links(html: str) -> dict[str, str]:
    """Tile label -> href."""
    found = re.findall(r'<a class="tile" href="([^"]+)"><span class="tile-label">([^<]+)<', html)
    return {unescape(label): unescape(href) for href, label in found}


def _inbox_ids(client: Client, url: str) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200
    return {row.conversation.pk for row in response.context["page"].rows}


def test_page_shows_the_figures_and_every_tile_opens_its_conversations(week, today, as_role):
    manager = as_role("manager")
    response = manager.get("/dashboards/?days=7")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and "<title" in html and 'role="img"' in html
    assert "75%" in html and "2.7 min" in html and "$0.0085" in html and "$0.0170" in html
    assert "no brand voice is set up yet" in html  # no BrandVoice: no tone, no fake figure
    links = _links(html)
    assert parse_qs(urlsplit(links["Dropped"]).query) == {
        "flag_kind": ["handoff_dropped"], **{k: [v] for k, v in WEEK.items()}}
    assert _inbox_ids(manager, links["Dropped"]) == {week["abandoned"].pk}
    assert _inbox_ids(manager, links["Returned to AI"]) == {week["returned"].pk}
    assert _inbox_ids(manager, links["AI cost per resolved"]) == {
        week["resolved"].pk, week["returned"].pk}
    assert _inbox_ids(manager, links["Handoff rate"]) == {
        week["resolved"].pk, week["returned"].pk, week["abandoned"].pk}
    # CSAT bars, model and prompt rows link to their own conversations.
    for which in ("none", "abandoned"):
        href = unescape(re.search(
            rf'href="([^"]*handoff_state={which}[^"]*)"', html).group(1))
        assert _inbox_ids(manager, href) == {week[which].pk}
    mini = unescape(re.search(r'href="([^"]*model=gpt-4.1-mini[^"]*)"', html).group(1))
    assert _inbox_ids(manager, mini) == {week["returned"].pk, week["none"].pk}
    v12 = unescape(re.search(r'href="([^"]*prompt_version=v12[^"]*)"', html).group(1))
    assert _inbox_ids(manager, v12) == {week["resolved"].pk}


def test_period_and_channel_live_in_the_url(week, today, as_role):
    viewer = as_role("viewer")
    response = viewer.get("/dashboards/?days=90&channel=web")
    assert response.status_code == 200
    board = response.context["board"]
    assert board.period.days == 90 and board.period.channel == "web"
    assert board.period.first == date(2026, 8, 25)
    html = response.content.decode()
    assert 'href="?channel=web&amp;days=90" class="on">90 days' in html
    assert 'href="?days=90&amp;channel=web" class="on">Web chat' in html
    bad = viewer.get("/dashboards/?days=12&channel=fax")
    assert bad.status_code == 400 and bad.context["board"].period.days == 30


def test_inbox_filters_for_resolved_and_handoff_presence(week):
    def ids(**filters: str) -> set[int]:
        return set(inbox_queryset(filters=InboxFilters(**filters)).values_list("pk", flat=True))

    assert ids(resolved="yes") == {week["resolved"].pk, week["returned"].pk}
    assert ids(resolved="no") == {week["abandoned"].pk, week["none"].pk}
    assert ids(handoff_state="none") == {week["none"].pk}
    assert ids(handoff_state="any") == {week["resolved"].pk, week["returned"].pk,
                                        week["abandoned"].pk}


def test_roles_dashboards_for_all_export_for_managers(week, as_role, client):
    assert client.get("/dashboards/").status_code == 302  # signed out: sign in first
    assert as_role(None).get("/dashboards/").status_code == 403
    for role in ("viewer", "qa_reviewer"):
        c = as_role(role)
        assert c.get("/dashboards/").status_code == 200
        assert c.get("/export.csv").status_code == 403
        assert "Export CSV" not in c.get("/inbox/").content.decode()
    manager = as_role("manager")
    inbox = manager.get("/inbox/?channel=whatsapp").content.decode()
    assert 'href="/export.csv?channel=whatsapp" download>Export CSV' in inbox
    assert "Dashboards</a>" in inbox


def _csv(response) -> list[dict[str, str]]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_rows_per_conversation_with_the_inbox_filters(week, as_role):
    manager = as_role("manager")
    rows = _csv(manager.get("/export.csv"))
    assert len(rows) == 4
    by_id = {int(r["id"]): r for r in rows}
    resolved = by_id[week["resolved"].pk]
    assert resolved["channel"] == "web"
    assert resolved["customer"] == scenario_customer(scenario_get("web-on-time"))
    assert (resolved["handoffs"], resolved["latest_handoff_state"]) == ("1", "resolved")
    assert resolved["time_to_human_seconds"] == "162.0"
    assert (resolved["ai_cost"], resolved["csat"]) == ("0.010000", "5")
    assert resolved["replay_url"] == f"http://testserver/conversations/{week['resolved'].pk}/"
    dropped = by_id[week["abandoned"].pk]
    assert dropped["open_flags"] == "handoff_dropped:1" and dropped["worst_severity"] == "high"
    assert (dropped["ai_cost"], dropped["time_to_human_seconds"]) == ("", "")
    none = by_id[week["none"].pk]
    assert (none["handoffs"], none["latest_handoff_state"]) == ("0", "")
    # Newest activity first, like the inbox; the filters narrow the rows.
    order = list(Conversation.objects.order_by("-last_activity_at", "-id")
                 .values_list("pk", flat=True))
    assert [int(r["id"]) for r in rows] == order
    only = _csv(manager.get("/export.csv?channel=whatsapp&handoff_state=returned"))
    assert [int(r["id"]) for r in only] == [week["returned"].pk]


def test_csv_masks_customers_without_view_pii(week):
    exporter = User.objects.create_user("exporter")
    exporter.user_permissions.set(Permission.objects.filter(
        content_type__app_label="audit", codename__in=["view_auditor", "export_data"]))
    c = Client()
    c.force_login(exporter)
    rows = _csv(c.get("/export.csv?channel=whatsapp"))
    assert rows and all("•" in r["customer"] for r in rows)
    returned = next(r for r in rows if int(r["id"]) == week["returned"].pk)
    assert returned["customer"] == mask_address(week["returned"].customer_address)
    assert week["returned"].customer_address not in json.dumps(rows)


def test_csv_walks_batches_with_constant_queries_per_batch(week):
    from audit.export import export_batches

    filters = InboxFilters()
    with CaptureQueriesContext(connection) as one:
        batches = list(export_batches(filters=filters, batch=1))
    assert [len(b) for b in batches] == [1, 1, 1, 1, 1][:len(batches)] and len(batches) == 4
    ids = [b[0][0] for b in batches]
    assert len(set(ids)) == 4  # every conversation once
    # One query per batch (and one for the empty batch that ends the walk when full).
    assert len(one) == 5
    with CaptureQueriesContext(connection) as all_in_one:
        assert sum(len(b) for b in export_batches(filters=filters, batch=100)) == 4
    assert len(all_in_one) == 1


def test_queries_do_not_grow_with_the_data(client, settings, as_role, today):
    manager = as_role("manager")

    def counted(url: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = manager.get(url)
            if isinstance(response, StreamingHttpResponse):
                b"".join(response.streaming_content)
        assert response.status_code == 200
        return len(queries)

    play(client, settings, scenario_get("web-on-time"))
    small = counted("/dashboards/?days=7"), counted("/export.csv")
    for key in ("sms-on-time", "whatsapp-two-handoffs-after-return", "web-late-queue",
                "sms-late-assigned", "whatsapp-dropped-at-close"):
        play(client, settings, scenario_get(key))
    _ai_and_outcomes(client)
    large = counted("/dashboards/?days=7"), counted("/export.csv")
    assert large == small


def test_tone_by_channel_and_author_kind_from_the_daily_aggregates(week, today, as_role):
    brand = BrandVoice.objects.create(name="brisa", display_name="Brisa Home", is_default=True)
    BrandVoice.objects.create(name="other", display_name="Other")
    rows = [  # day, channel, author kind, count, mean, sd
        (date(2026, 11, 20), "web", "ai", 3, 0.80, 0.10),
        (date(2026, 11, 21), "web", "ai", 1, 0.40, 0.0),
        (date(2026, 11, 21), "web", "human", 4, 0.90, 0.05),
        (date(2026, 11, 21), "whatsapp", "ai", 2, 0.60, 0.0),
        (date(2026, 11, 1), "whatsapp", "ai", 9, 0.10, 0.0),  # before the 7-day period
    ]
    for day, channel, kind, count, mean, sd in rows:
        ScoreDaily.objects.create(day=day, brand=brand, channel=channel, author_kind=kind,
                                  name="brand_tone", count=count, mean=mean, stddev=sd)
    board = dashboard(period=dashboard_period(days=7, today=TODAY.date()), now=TODAY)
    t = board.tone
    assert t.brand == "brisa" and [b for b, _ in t.brands] == ["brisa", "other"]
    # web: (3 x 0.8 + 1 x 0.4 + 4 x 0.9) / 8 = 0.8; whatsapp 0.6 (the old day left out).
    assert t.per_channel["web"]["mean"] == pytest.approx(0.8)
    assert t.per_channel["whatsapp"] == {"count": 2, "mean": 0.6, "stddev": 0.0}
    assert t.by_author["web"]["ai"]["mean"] == pytest.approx(0.7)  # (2.4 + 0.4) / 4
    assert t.by_author["web"]["human"]["count"] == 4
    assert t.consistency_index == pytest.approx(0.8)  # 1 - SD(0.8, 0.6) / 0.5 = 1 - 0.1 / 0.5
    assert t.daily["web"] == {"2026-11-20": pytest.approx(0.8),
                              "2026-11-21": pytest.approx(0.8)}  # (0.4 + 3.6) / 5
    html = as_role("viewer").get("/dashboards/?days=7&brand=brisa").content.decode()
    links = _links(html)
    assert links["Consistency index"] == "/inbox/?brand=brisa&since=2026-11-16&until=2026-11-22"
    assert "Tone by channel and author kind (Brisa Home)" in html and ">80<" in html
    assert "<span class=\"tile-value\">76</span>" in html  # (8 x 0.8 + 2 x 0.6) / 10
    other = dashboard(period=dashboard_period(days=7, today=TODAY.date()), now=TODAY,
                      brand="other").tone
    assert other.brand == "other" and other.per_channel == {} and other.daily == {}


def test_line_chart_svg_is_accessible_escaped_and_linked():
    svg = line_chart(title="Rate <per> day", series=[
        Series("A&B", [Point("16/11", 0.5, "/inbox/?a=1&b=2", "50%"), Point("17/11", None),
                       Point("18/11", 0.25)]),
    ])
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<title id=" in svg and "Rate &lt;per&gt; day" in svg
    assert "<desc" in svg and "A&amp;B — 16/11: 50%; 18/11: 0.25" in svg
    assert 'href="/inbox/?a=1&amp;b=2"' in svg
    assert svg.count("<circle") == 2  # the gap has no point
    assert "<polyline" not in svg  # two points split by a gap: no line joins them


def test_bar_chart_and_axis_tops():
    svg = bar_chart(title="CSAT", x_max=5, points=[Point("No handoff", 4.0, "/x"),
                                                   Point("Returned", None)])
    assert svg.count("<text") == 4 and "—" in svg and 'href="/x"' in svg
    assert [nice_max(v) for v in (0, 0.3, 1, 3, 7, 12, 180, 4167)] == [
        1.0, 0.5, 1, 5, 10, 20, 200, 5000]


def test_tone_by_language_and_channel_distributions_from_scored_messages(as_role):
    from scoring.services import messages_score
    from tests.scoring.test_scoring_services import record
    from tests.support.scoring_brand import BRISA

    BrandVoice.objects.create(**BRISA, is_default=True)
    texts = ([("Thanks so much for waiting! We're happy to help.", "whatsapp")] * 20
             + [("hey lol calm down ur order is gonna be late", "sms")] * 20
             + [("Muchas gracias por esperar, su pedido llega el martes por la mañana.",
                 "sms")] * 2)
    ids = [record(t, channel=ch, customer=f"+1212555{i:04d}").pk
           for i, (t, ch) in enumerate(texts)]
    messages_score(message_ids=ids)
    t = dashboard(period=dashboard_period(days=7), now=datetime.now(UTC)).tone
    assert [(r["language"], r["messages"], r["not_scored"]) for r in t.languages] == [
        ("en", 40, 0), ("es", 2, 2)]  # Spanish: brand tone without warmth (no lexicon)
    assert t.languages[1]["also"]["warmth"] is None
    assert t.languages[1]["also"]["formality"] is not None
    (pair,) = t.distributions["pairs"]
    assert (pair["a"], pair["b"], pair["n_a"], pair["n_b"]) == ("sms", "whatsapp", 22, 20)
    html = unescape(as_role("viewer").get("/dashboards/?days=7").content.decode())
    assert "Channels compared as distributions (Brisa Home)" in html
    assert "SMS vs WhatsApp" in html and "22 / 20" in html
    assert "Tone by language (Brisa Home)" in html and "Spanish" in html
    assert "not scored" in html  # Spanish warmth
