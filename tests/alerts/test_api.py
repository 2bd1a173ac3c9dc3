"""The alerts API: list and detail with history, actions for managers only, rules created
and changed with versions, clear 400s."""

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Alert, Rule
from alerts.services import alerts_evaluate_flags
from tests.support.roles import token_for

from .conftest import dropped_flag, make_rule

pytestmark = pytest.mark.django_db


def api(role: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {token_for(role)}")


def test_alerts_list_detail_and_actions():
    rule = make_rule(kind="flag", flag_kinds=["handoff_dropped"])
    dropped_flag(at=timezone.now())
    alerts_evaluate_flags()
    alert = Alert.objects.get()
    listed = api("viewer").get("/api/alerts/?state=firing").json()
    assert [a["id"] for a in listed["results"]] == [alert.pk]
    assert listed["results"][0]["rule"] == rule.name
    assert listed["results"][0]["inbox_url"] == f"/inbox/?alert={alert.pk}"
    assert api("viewer").get("/api/alerts/?state=bogus").status_code == 400
    url = f"/api/alerts/{alert.pk}/action/"
    assert api("viewer").post(url, {"action": "acknowledge"}).status_code == 403
    bad = api("manager").post(url, {"action": "snooze"}, content_type="application/json")
    assert bad.status_code == 400 and "hours" in bad.json()
    done = api("manager").post(url, {"action": "snooze", "hours": 2},
                               content_type="application/json").json()
    assert [e["kind"] for e in done["events"]] == ["fired", "snoozed"]
    assert done["snoozed_until"] is not None
    assert api("viewer").get("/api/alerts/999999/").status_code == 404


def test_rules_are_created_and_changed_by_managers_with_versions():
    body = {"name": "Dropped rate", "kind": "metric", "metric": "dropped_rate",
            "threshold": 5, "window_minutes": 30, "group_by": "channel"}
    assert api("viewer").post("/api/alert-rules/", body,
                              content_type="application/json").status_code == 403
    made = api("manager").post("/api/alert-rules/", body, content_type="application/json")
    assert made.status_code == 201, made.content
    rule = made.json()
    assert rule["sentence"] == ("Dropped rate over 30 min above 5% per channel "
                                "(at least 20 in the sample).")
    changed = api("manager").patch(f"/api/alert-rules/{rule['id']}/", {"threshold": 8},
                                   content_type="application/json").json()
    assert changed["version"] == 2
    assert changed["versions"][0]["changes"] == {"threshold": [5.0, 8.0]}
    assert changed["versions"][0]["changed_by"] == "api-manager"
    bad = api("manager").patch(f"/api/alert-rules/{rule['id']}/", {"metric": "nope"},
                               content_type="application/json")
    assert bad.status_code == 400 and "metric" in bad.json()
    assert Rule.objects.get().metric == "dropped_rate"
