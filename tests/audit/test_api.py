"""The REST API per role and endpoint, on journeys played through the signed events webhook:
who may read and act (401 / 403 in JSON), masking for viewers, filters and their 400s,
keyset pages that walk every row once, constant query counts, the flag action recorded
with who and when, metrics with their rates, tokens, the schema and its local docs."""

import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.api.filters import day_start
from audit.masking import mask_address, mask_text
from audit.roles import roles_ensure
from conversations.models import Conversation, Flag, Message
from demo.scenarios import scenario_get
from handoffs.machine import ACTIVE
from handoffs.models import Handoff
from handoffs.selectors import handoff_metrics
from scoring.models import Score
from scoring.services import messages_score
from tests.support.plugin_host import script
from tests.support.roles import token_for, user_in
from tests.support.scenarios import play

pytestmark = pytest.mark.django_db

API = "/api"
ROLES = ("manager", "qa_reviewer", "viewer")
SCENARIOS = ("whatsapp-window-expired", "sms-ai-kept-talking", "web-on-time",
             "web-missed-request")
READS = ("/conversations/", "/conversations/{c}/", "/messages/", "/handoffs/",
         "/handoffs/{h}/", "/flags/", "/flags/{f}/", "/scores/", "/metrics/handoffs/")
PII_BODY = "Call me on +44 7911 123456 or mail jane.doe@example.com"


@pytest.fixture
def api():
    """A client per role, authenticated by its token (None: a user with no role)."""

    def client_for(role: str | None) -> Client:
        return Client(headers={"Authorization": f"Token {token_for(role)}"})

    return client_for


@pytest.fixture
def stories(client, settings):
    for key in SCENARIOS:
        play(client, settings, scenario_get(key))
    client.logout()
    return {c.channel + ":" + c.customer_address: c for c in Conversation.objects.all()}


@pytest.fixture
def scored(stories):
    """The stories' messages scored by the scoring service (as its worker does)."""
    assert messages_score(message_ids=list(Message.objects.values_list("pk", flat=True)))
    assert Score.objects.exists()
    return stories


def ids_for(stories) -> dict[str, int]:
    return {"c": next(iter(stories.values())).pk, "h": Handoff.objects.first().pk,
            "f": Flag.objects.first().pk}


def get(client: Client, path: str, **params):
    return client.get(API + path, params)


def walk(client: Client, path: str, **params) -> list[dict]:
    """Every row of a list endpoint, following `next` links."""
    rows, url = [], f"{API}{path}"
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        if not body["next"]:
            return rows
        response = client.get(body["next"])


# --- who may do what -----------------------------------------------------------------------


def test_every_endpoint_answers_401_without_credentials_and_403_without_a_role(
        stories, api, client):
    ids = ids_for(stories)
    nobody = api(None)
    for path in READS:
        url = path.format(**ids)
        response = get(client, url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Token"
        assert "detail" in response.json()
        response = get(nobody, url)
        assert response.status_code == 403, url
        assert "view permission" in response.json()["detail"]
    status_url = f"{API}/flags/{ids['f']}/status/"
    assert client.post(status_url, {"status": "resolved"}).status_code == 401
    assert nobody.post(status_url, {"status": "resolved"}).status_code == 403
    bad_token = Client(headers={"Authorization": "Token not-a-real-token"})
    assert get(bad_token, "/flags/").status_code == 401


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reads_every_endpoint(stories, api, role):
    ids = ids_for(stories)
    reader = api(role)
    for path in READS:
        response = get(reader, path.format(**ids))
        assert response.status_code == 200, (path, response.content)
        assert response["Content-Type"] == "application/json"


def test_session_sign_in_works_too_for_the_browsable_api(stories):
    roles_ensure()
    user = User.objects.create(username="browser")
    user.groups.add(Group.objects.get(name="manager"))
    browser = Client()
    browser.force_login(user)
    ids = ids_for(stories)
    for path in (*READS, "/flags/{f}/status/"):
        response = browser.get(API + path.format(**ids), HTTP_ACCEPT="text/html")
        expected = 405 if path.endswith("status/") else 200  # GET on an action: its form
        assert response.status_code == expected, path
        assert b"<html" in response.content, path
    # A session is not a token: a POST without the CSRF token is refused.
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    response = strict.post(f"{API}/flags/{ids['f']}/status/", {"status": "resolved"})
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


# --- masking -------------------------------------------------------------------------------


def test_viewers_get_customer_addresses_and_pii_masked(stories, api):
    whatsapp = next(c for c in stories.values() if c.channel == "whatsapp")
    Message.objects.filter(conversation=whatsapp, author_kind="customer").update(body=PII_BODY)
    Conversation.objects.filter(pk=whatsapp.pk).update(subject=PII_BODY)  # in every view
    address = whatsapp.customer_address

    def seen_by(role: str) -> dict[str, str]:
        reader = api(role)
        return {
            "list": get(reader, "/conversations/", channel="whatsapp").content.decode(),
            "detail": get(reader, f"/conversations/{whatsapp.pk}/").content.decode(),
            "messages": get(reader, "/messages/",
                            conversation=whatsapp.pk).content.decode(),
        }

    for role in ("manager", "qa_reviewer"):
        for name, body in seen_by(role).items():
            assert address in body, (role, name)
            assert PII_BODY in body, (role, name)
    for name, body in seen_by("viewer").items():
        assert address not in body, name
        assert "7911 123456" not in body and "jane.doe@example.com" not in body, name
        assert mask_text(PII_BODY) in body, name
    viewer = api("viewer")
    row = get(viewer, "/conversations/", channel="whatsapp").json()["results"][0]
    assert row["conversation"]["customer_address"] == mask_address(address)
    detail = get(viewer, f"/conversations/{whatsapp.pk}/").json()
    authors = [i["message"]["author"] for i in detail["journey"] if i["kind"] == "message"]
    customers = [a for a in authors if a and a["kind"] == "customer"]
    assert customers and all(
        a["external_id"].endswith(address[-4:]) and address[1:-4] not in a["external_id"]
        for a in customers)


def test_flag_evidence_is_masked_for_viewers(stories, api):
    flag = Flag.objects.first()
    flag.evidence = {**flag.evidence, "excerpt": PII_BODY, "n": 12345678}
    flag.save(update_fields=["evidence"])
    viewer = get(api("viewer"), f"/flags/{flag.pk}/").json()["evidence"]
    manager = get(api("manager"), f"/flags/{flag.pk}/").json()["evidence"]
    assert manager["excerpt"] == PII_BODY
    assert viewer["excerpt"] == mask_text(PII_BODY) and viewer["n"] == 12345678


# --- the flag action -----------------------------------------------------------------------


def test_only_managers_change_a_flags_status_recorded_with_who_and_when(stories, api):
    flag = Flag.objects.filter(status="open").order_by("-severity").first()
    url = f"{API}/flags/{flag.pk}/status/"
    for role in ("viewer", "qa_reviewer"):
        response = api(role).post(url, {"status": "acknowledged"}, content_type="application/json")
        assert response.status_code == 403
        assert "managers" in response.json()["detail"]
    flag.refresh_from_db()
    assert flag.status == "open" and flag.status_changed_by == ""

    manager = api("manager")
    response = manager.post(url, {"status": "resolved", "note": "called the customer back"},
                            content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["status_changed_by"], body["note"]) == (
        "resolved", "api-manager", "called the customer back")
    flag.refresh_from_db()
    assert (flag.status, flag.status_changed_by) == ("resolved", "api-manager")
    assert abs((timezone.now() - flag.status_changed_at).total_seconds()) < 3600
    # The inbox's severity order follows (flag_set_status refreshes the rank).
    conversation = Conversation.objects.get(pk=flag.conversation_id)
    active = conversation.flags.filter(status__in=Flag.ACTIVE_STATUSES)
    assert (conversation.open_flag_rank > 0) == active.exists()

    for bad in ({"status": "nonsense"}, {}, {"status": "open", "note": "x" * 2001},
                {"status": "open", "note": "nul\x00byte"}):
        response = manager.post(url, bad, content_type="application/json")
        assert response.status_code == 400, bad
        assert set(response.json()) <= {"status", "note"}
    assert manager.post(f"{API}/flags/999999999/status/", {"status": "open"},
                        content_type="application/json").status_code == 404
    # Form posts (the browsable API's form) work too; reopening is allowed.
    response = manager.post(url, {"status": "open"})
    assert response.status_code == 200 and response.json()["status"] == "open"


# --- filters -------------------------------------------------------------------------------


def test_conversation_filters_are_the_inbox_filters(stories, api):
    manager = api("manager")

    def ids(**params) -> set[int]:
        return {r["conversation"]["id"] for r in walk(manager, "/conversations/", **params)}

    assert ids() == {c.pk for c in stories.values()}
    assert ids(channel="sms") == {c.pk for c in stories.values() if c.channel == "sms"}
    missed = {c.pk for c in stories.values() if c.flags.filter(kind="handoff_missed").exists()}
    assert missed and ids(flag_kind="handoff_missed") == missed
    resolved_parcel = ids(handoff_state="resolved", q="parcel")
    assert len(resolved_parcel) == 1
    assert ids(flag_status="resolved") == set()
    handed_off = {c.pk for c in stories.values() if c.handoffs.exists()}
    assert ids(handoff_state="any") == handed_off
    assert ids(handoff_state="none") == ids() - handed_off
    assert ids(resolved="yes") | ids(resolved="no") == ids()
    assert ids(resolved="yes") & ids(resolved="no") == set()
    today = timezone.localdate()
    assert ids(since="2000-01-01", until=today.isoformat()) == ids()
    assert ids(until="2000-01-01") == set()
    # Severity order: the most severe open flag first.
    ranks = [Conversation.objects.get(pk=r["conversation"]["id"]).open_flag_rank
             for r in walk(manager, "/conversations/", ordering="severity")]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] > 0
    rows = get(manager, "/conversations/", ordering="severity").json()["results"]
    top = rows[0]
    assert top["conversation"]["severity"] == top["flags"][0]["severity"]


def test_message_handoff_and_flag_filters(stories, api):
    manager = api("manager")
    conversation = next(c for c in stories.values() if c.channel == "web")
    rows = walk(manager, "/messages/", conversation=conversation.pk)
    assert {r["conversation"] for r in rows} == {conversation.pk}
    assert len(rows) == conversation.messages.count()
    customer = walk(manager, "/messages/", conversation=conversation.pk, author_kind="customer",
                    direction="inbound")
    assert customer and all(r["author_kind"] == "customer" for r in customer)
    assert len(walk(manager, "/messages/", channel="sms")) == Message.objects.filter(
        conversation__channel="sms").count()
    assert walk(manager, "/messages/", since="2999-01-01") == []

    handoffs = walk(manager, "/handoffs/", channel="whatsapp")
    assert handoffs and {h["channel"] for h in handoffs} == {"whatsapp"}
    assert all(h["transitions"] and h["waits"] is not None for h in handoffs)
    state = handoffs[0]["state"]
    assert {h["id"] for h in walk(manager, "/handoffs/", state=state)} == set(
        Handoff.objects.filter(state=state).values_list("pk", flat=True))
    first = Handoff.objects.exclude(agent_id="").first()
    if first is not None:
        assert {h["agent_id"] for h in walk(manager, "/handoffs/", agent=first.agent_id)} == {
            first.agent_id}

    flags = walk(manager, "/flags/", kind="handoff_dropped")
    assert flags and {f["kind"] for f in flags} == {"handoff_dropped"}
    assert {f["id"] for f in walk(manager, "/flags/", severity="high", status="open")} == set(
        Flag.objects.filter(severity="high", status="open").values_list("pk", flat=True))
    assert {f["id"] for f in walk(manager, "/flags/", conversation=conversation.pk)} == set(
        conversation.flags.values_list("pk", flat=True))


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/conversations/", {"channel": "fax"}, "channel"),
    ("/conversations/", {"since": "not-a-date"}, "since"),
    ("/conversations/", {"since": "2026-02-01", "until": "2026-01-01"}, "until"),
    ("/conversations/", {"until": "9999-12-31"}, "until"),
    ("/conversations/", {"ordering": "loudest"}, "ordering"),
    ("/conversations/", {"q": "x" * 201}, "q"),
    ("/conversations/", {"agent": "a\x00b"}, "agent"),
    ("/conversations/", {"cursor": "%%%garbage"}, "cursor"),
    ("/conversations/", {"page_size": "0"}, "page_size"),
    ("/conversations/", {"page_size": "lots"}, "page_size"),
    ("/messages/", {"conversation": "abc"}, "conversation"),
    ("/messages/", {"conversation": str(2**70)}, "conversation"),
    ("/messages/", {"author_kind": "robot"}, "author_kind"),
    ("/messages/", {"cursor": "!!not-base64!!"}, "cursor"),
    ("/handoffs/", {"state": "lost"}, "state"),
    ("/handoffs/", {"page_size": "201"}, "page_size"),
    ("/flags/", {"severity": "apocalyptic"}, "severity"),
    ("/flags/", {"since": "0001-01-01"}, "since"),
    ("/metrics/handoffs/", {"group_by": "moon"}, "group_by"),
    ("/metrics/handoffs/", {"since": "2026-02-01", "until": "2026-01-01"}, "until"),
    ("/metrics/handoffs/", {"channel": "fax"}, "channel"),
])
def test_bad_inputs_get_a_400_naming_the_field(api, path, params, field):
    response = get(api("viewer"), path, **params)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()


def test_unknown_ids_are_404_in_json(api):
    viewer = api("viewer")
    for path in ("/conversations/{}/", "/handoffs/{}/", "/flags/{}/"):
        for pk in (999999, 2**70):
            response = get(viewer, path.format(pk))
            assert response.status_code == 404 and "detail" in response.json()


# --- pages and query counts ----------------------------------------------------------------


@pytest.mark.parametrize(("path", "key"), [
    ("/conversations/", lambda r: r["conversation"]["id"]),
    ("/messages/", lambda r: r["id"]),
    ("/handoffs/", lambda r: r["id"]),
    ("/flags/", lambda r: r["id"]),
    ("/scores/", lambda r: r["id"]),
])
def test_pages_walk_every_row_exactly_once(scored, api, path, key):
    manager = api("manager")
    everything = [key(r) for r in walk(manager, path, page_size=200)]
    assert len(everything) == len(set(everything)) > 1
    for size in (1, 2, 3):
        seen = [key(r) for r in walk(manager, path, page_size=size)]
        assert seen == everything
    if path == "/conversations/":
        by_severity = [key(r) for r in walk(manager, path, ordering="severity", page_size=1)]
        assert sorted(by_severity) == sorted(everything)
        assert len(by_severity) == len(set(by_severity))


@pytest.mark.parametrize("path", ["/conversations/", "/messages/", "/handoffs/", "/flags/",
                                  "/scores/"])
def test_list_queries_do_not_grow_with_the_page_size(request, stories, api, path):
    if path == "/scores/":
        request.getfixturevalue("scored")
    manager = api("manager")
    # The inbox reads open waits only for pages that hold an active handoff: by severity the
    # first row has one, so the one-row page and the whole list run the same kinds of query.
    params = {"ordering": "severity"} if path == "/conversations/" else {}
    get(manager, path)  # warm up content types and the like
    counts = []
    for size in (1, 200):
        with CaptureQueriesContext(connection) as queries:
            response = get(manager, path, page_size=size, **params)
        assert response.status_code == 200
        counts.append((len(queries), len(response.json()["results"])))
    (small, one), (large, many) = counts
    assert one == 1 and many > 1
    assert small == large, counts
    if path == "/conversations/":
        first = response.json()["results"][0]
        assert first["handoff"]["state"] in {s.value for s in ACTIVE}


def test_the_journey_costs_the_same_queries_however_long(stories, api):
    manager = api("manager")
    conversations = sorted(stories.values(), key=lambda c: c.messages.count())
    short, long = conversations[0], conversations[-1]
    assert long.messages.count() > short.messages.count()
    counts = []
    for conversation in (short, long):
        with CaptureQueriesContext(connection) as queries:
            assert get(manager, f"/conversations/{conversation.pk}/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- the journey and metrics ---------------------------------------------------------------


def test_the_detail_tells_the_whole_journey_in_time_order(stories, api):
    conversation = next(c for c in stories.values() if c.channel == "web"
                        and c.handoffs.exists())
    body = get(api("qa_reviewer"), f"/conversations/{conversation.pk}/").json()
    assert body["conversation"]["id"] == conversation.pk
    journey = body["journey"]
    kinds = {i["kind"] for i in journey}
    assert {"message", "event", "transition"} <= kinds
    assert [i["at"] for i in journey] == sorted(i["at"] for i in journey)
    for item in journey:
        assert item[item["kind"]] is not None
        assert all(item[k] is None for k in ("message", "ai_step", "event", "transition",
                                             "outcome", "flag") if k != item["kind"])
    messages = [i["message"] for i in journey if i["kind"] == "message"]
    assert len(messages) == conversation.messages.count()
    assert all("status_history" in m for m in messages)
    handoffs = body["handoffs"]
    assert [h["number"] for h in handoffs] == sorted(
        conversation.handoffs.values_list("number", flat=True))
    assert all(isinstance(h["waits"], list) for h in handoffs)
    transitions = [i["transition"] for i in journey if i["kind"] == "transition"]
    assert {t["handoff"] for t in transitions} <= {h["id"] for h in handoffs}
    flags = [i["flag"] for i in journey if i["kind"] == "flag"]
    assert len(flags) == conversation.flags.count()


def test_metrics_are_the_handoff_metrics_with_their_rates(stories, api):
    viewer = api("viewer")
    body = get(viewer, "/metrics/handoffs/", since="2000-01-01", group_by="channel").json()
    assert body["group_by"] == "channel" and body["since"] == "2000-01-01"
    rows = {r["key"]: r for r in body["rows"]}
    expected = handoff_metrics(since=day_start(date(2000, 1, 1)),
                               until=day_start(timezone.localdate() + timedelta(days=1)),
                               group_by="channel")
    assert set(rows) == {m.key for m in expected}
    for m in expected:
        row = rows[m.key]
        assert row["handoffs"] == m.handoffs
        assert row["handoff_rate"] == m.handoff_rate
        assert row["dropped_rate"] == m.dropped_rate
        assert row["time_to_human_p50"] == m.time_to_human_p50
        assert {k: v["met"] for k, v in row["sla"].items()} == {
            k: v.met for k, v in m.sla.items()}
    whole = get(viewer, "/metrics/handoffs/", since="2000-01-01").json()["rows"]
    assert [r["key"] for r in whole] == ["all"]
    assert whole[0]["handoffs"] == Handoff.objects.count()
    assert get(viewer, "/metrics/handoffs/", channel="sms", since="2000-01-01",
               group_by="day").status_code == 200


def test_scores_with_filters_and_masked_explanations(scored, api):
    manager = api("manager")
    conversation = next(c for c in scored.values() if c.channel == "sms")
    rows = walk(manager, "/scores/", conversation=conversation.pk)
    assert len(rows) == Score.objects.filter(conversation=conversation).count() > 0
    tone = walk(manager, "/scores/", name="brand_tone", source="auto", author_kind="ai")
    assert tone and {(r["name"], r["source"], r["author_kind"]) for r in tone} == {
        ("brand_tone", "auto", "ai")}
    assert all(0 <= r["value"] <= 1 and r["author"].startswith("brand_tone@") for r in tone)
    message = tone[0]["message"]
    assert {r["message"] for r in walk(manager, "/scores/", message=message)} == {message}
    assert walk(manager, "/scores/", channel="email") == []
    assert walk(manager, "/scores/", until="2000-01-01") == []
    # The inbox's brand filter: the default brand owns every conversation here.
    brand = Score.objects.filter(brand__isnull=False).first().brand
    assert {r["conversation"]["id"] for r in walk(manager, "/conversations/",
                                                   brand=brand.name)} == {
        c.pk for c in scored.values()}
    assert walk(manager, "/conversations/", brand="no-such-brand") == []

    score = Score.objects.get(pk=tone[0]["id"])
    score.explanations = {**score.explanations, "excerpt": PII_BODY}
    score.save(update_fields=["explanations"])
    for role, expected in (("viewer", mask_text(PII_BODY)), ("qa_reviewer", PII_BODY)):
        row = next(r for r in walk(api(role), "/scores/", message=message)
                   if r["id"] == score.pk)
        assert row["explanations"]["excerpt"] == expected, role


# --- tokens, schema, docs ------------------------------------------------------------------


def test_issue_api_token_prints_a_working_token_and_rotates_it():
    roles_ensure()
    user = User.objects.create(username="ops")
    user.groups.add(Group.objects.get(name="viewer"))
    first = token_for_user("ops")
    assert first == token_for_user("ops")  # stable until rotated
    assert get(Client(headers={"Authorization": f"Token {first}"}), "/flags/").status_code == 200
    out = StringIO()
    call_command("issue_api_token", "ops", "--rotate", stdout=out)
    second = out.getvalue().strip()
    assert second != first
    assert get(Client(headers={"Authorization": f"Token {first}"}), "/flags/").status_code == 401
    assert get(Client(headers={"Authorization": f"Token {second}"}), "/flags/").status_code == 200
    with pytest.raises(CommandError):
        call_command("issue_api_token", "nobody-here")


def token_for_user(username: str) -> str:
    out = StringIO()
    call_command("issue_api_token", username, stdout=out)
    return out.getvalue().strip()


def test_the_schema_and_docs_are_served_with_local_assets(client):
    client.force_login(user_in("viewer", "docs-reader"))
    response = client.get(f"{API}/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.") and "/api/conversations/" in schema["paths"]
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    # Swagger UI from the sidecar's static files; Redoc's bundle through our own route (its
    # CDN logo address emptied), so neither page asks the internet for anything.
    for path, local in (("/docs/", "/static/drf_spectacular_sidecar/"),
                        ("/redoc/", f"{API}/redoc/redoc.standalone.js")):
        page = client.get(f"{API}{path}").content.decode()
        assert local in page, path
        assert "cdn" not in page.lower() and "https://" not in page, path
    bundle = client.get(f"{API}/redoc/redoc.standalone.js")
    assert bundle.status_code == 200
    assert b"https://cdn.redoc.ly/redoc/logo-mini.svg" not in bundle.content


@pytest.mark.slow
def test_the_api_works_in_a_minimal_host_under_its_mount(host):
    out = script(host, """
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from io import StringIO
from django.test import Client
user = User.objects.create(username="lead")
user.groups.add(Group.objects.get(name="manager"))
tokens = StringIO()
call_command("issue_api_token", "lead", stdout=tokens)
client = Client(HTTP_HOST="support.example.com",
                headers={"Authorization": "Token " + tokens.getvalue().strip()})
schema = client.get("/auditor/api/schema/", HTTP_ACCEPT="application/json")
print(json.dumps({
    "schema": schema.status_code,
    "paths": [p for p in sorted(json.loads(schema.content)["paths"])
              if "/conversations/" in p][:2],
    "list": client.get("/auditor/api/conversations/").json(),
    "docs": client.get("/auditor/api/docs/").status_code,
}))
""")
    assert out == {"schema": 200,
                   "paths": ["/auditor/api/conversations/", "/auditor/api/conversations/{id}/"],
                   "list": {"next": None, "results": []}, "docs": 200}


def test_json_everywhere(stories, api):
    # Errors and pages alike are JSON documents, never HTML error pages.
    viewer = api("viewer")
    for path in ("/conversations/?channel=fax", "/flags/999999/", "/handoffs/?page_size=x"):
        response = viewer.get(API + path)
        assert response["Content-Type"] == "application/json"
        json.loads(response.content)
