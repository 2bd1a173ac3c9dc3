"""The alert pages: who may see and act, acknowledge / snooze / mute from the page, the
rule editor (versions), destinations with "send test", the inbox link, and the header
count."""

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertEvent, Delivery, Destination, Rule
from alerts.services import alerts_evaluate_flags

from .conftest import destination, dropped_flag, make_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def fired():
    rule = make_rule(kind="flag", name="Dropped handoffs", flag_kinds=["handoff_dropped"],
                     group_by="channel")
    flags = [dropped_flag(at=timezone.now()) for _ in range(2)]
    alerts_evaluate_flags()
    return rule, Alert.objects.get(rule=rule), flags


def test_alerts_page_lists_firing_alerts_and_the_header_counts_them(as_role, fired):
    rule, alert, _ = fired
    page = as_role("viewer").get("/alerts/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Dropped handoffs" in html and "2 matching flags since" in html
    assert 'id="alert-count" title="firing, not acknowledged, muted or snoozed">1<' in html
    assert "Acknowledge" not in html  # viewers read, managers act
    assert ">Acknowledge<" in as_role("manager").get("/alerts/").content.decode()


def test_manager_acknowledges_snoozes_and_mutes_from_the_page(as_role, fired):
    _, alert, _ = fired
    manager = as_role("manager")
    url = f"/alerts/{alert.pk}/action/"
    assert manager.post(url, {"action": "acknowledge"}).status_code == 302
    assert manager.post(url, {"action": "snooze", "hours": "4"}).status_code == 302
    assert manager.post(url, {"action": "mute"}).status_code == 302
    assert manager.post(url, {"action": "snooze", "hours": "999"}).status_code == 400
    assert manager.post(url, {"action": "explode"}).status_code == 400
    assert as_role("viewer").post(url, {"action": "mute"}).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_by == "user-manager" and alert.muted
    assert list(alert.events.values_list("kind", "by")) == [
        ("fired", ""), ("repeated", ""), ("acknowledged", "user-manager"),
        ("snoozed", "user-manager"), ("muted", "user-manager")]
    html = manager.get(f"/alerts/{alert.pk}/").content.decode()
    assert "Acknowledged" in html and "Snoozed" in html and "Muted" in html
    # The header no longer counts it.
    assert 'id="alert-count"' not in manager.get("/alerts/").content.decode()


def test_alert_detail_links_to_the_inbox_filtered_to_its_conversations(as_role, fired):
    _, alert, flags = fired
    viewer = as_role("viewer")
    html = viewer.get(f"/alerts/{alert.pk}/").content.decode()
    assert f'href="/inbox/?alert={alert.pk}"' in html
    inbox = viewer.get(f"/inbox/?alert={alert.pk}").content.decode()
    shown = {int(x) for x in __import__("re").findall(r'data-conversation="(\d+)"', inbox)}
    assert shown == {f.conversation_id for f in flags}
    assert viewer.get("/alerts/999999/").status_code == 404


def test_rule_editor_saves_versions_and_names_bad_fields(as_role):
    manager = as_role("manager")
    assert as_role("viewer").get("/alerts/rules/new/").status_code == 403
    form = {"name": "SLA", "kind": "metric", "severity": "high", "min_severity": "info",
            "metric": "sla_met", "comparison": "below", "threshold": "90",
            "window_minutes": "60", "min_sample": "20", "anomaly_z": "3.5",
            "min_history_weeks": "3", "alpha": "0.05", "enabled": "on"}
    assert manager.post("/alerts/rules/new/", form).status_code == 302
    rule = Rule.objects.get(name="SLA")
    assert (rule.version, rule.updated_by) == (1, "user-manager")
    assert manager.post(f"/alerts/rules/{rule.pk}/edit/",
                        {**form, "threshold": "85"}).status_code == 302
    html = manager.get(f"/alerts/rules/{rule.pk}/edit/").content.decode()
    assert "Threshold: 90.0 → 85.0" in html  # the rule's changes in words, by field label
    assert "[" not in html.split('id="versions"', 1)[1]
    bad = manager.post("/alerts/rules/new/", {**form, "name": "x", "threshold": ""})
    assert bad.status_code == 200 and "A metric rule needs a threshold." in bad.content.decode()
    rules_page = as_role("viewer").get("/alerts/rules/").content.decode()
    assert "SLA met over 1 h below 85%" in rules_page


def test_destinations_are_managers_only_validated_and_send_test(as_role, receiver,
                                                                local_destinations):
    manager = as_role("manager")
    assert as_role("viewer").get("/alerts/destinations/").status_code == 403
    refused = manager.post("/alerts/destinations/", {
        "name": "meta", "kind": "slack", "target": "ftp://169.254.169.254/",
        "quiet_timezone": "UTC", "enabled": "on"})
    assert "The URL must start with" in refused.content.decode()
    assert manager.post("/alerts/destinations/", {
        "name": "team", "kind": "slack", "target": receiver.url, "quiet_timezone": "UTC",
        "enabled": "on"}).status_code == 302
    team = Destination.objects.get(name="team")
    answer = manager.post(f"/alerts/destinations/{team.pk}/test/", follow=True)
    assert "Test message sent to team." in answer.content.decode()
    assert receiver.json()["text"].startswith("Test message from Handoff Auditor")


def test_dead_letters_are_listed_and_can_be_retried(as_role, receiver, local_destinations):
    hook = destination("slack", receiver.url)
    rule = make_rule(kind="flag", flag_kinds=["handoff_dropped"], destinations=[hook])
    dropped_flag(at=timezone.now())
    alerts_evaluate_flags()
    Delivery.objects.update(status="dead", last_error="The receiver answered 500.")
    manager = as_role("manager")
    html = manager.get("/alerts/destinations/").content.decode()
    assert "The receiver answered 500." in html and rule.name in html
    delivery = Delivery.objects.get()
    assert manager.post(f"/alerts/deliveries/{delivery.pk}/retry/").status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0
    assert AlertEvent.objects.filter(kind="fired").count() == 1


def test_rule_history_reads_as_words_whatever_shape_a_version_stored():
    """A version's changes are (before, after) pairs from rule_save; a row written by other
    means (an import, a hand edit) still reads as words on the rule's page, never a 500."""
    from audit.alerts_views import rule_change_words

    assert rule_change_words({"threshold": [90.0, 85.0], "enabled": [True, False]}) == [
        "Threshold: 90.0 → 85.0", "Enabled: yes → no"]
    assert rule_change_words({"threshold": 85.0}) == ["Threshold: 85.0"]
    assert rule_change_words({"brands": [{"contact": "x"}, "a", "b"]}) == [
        "Brands: contact: x, a, b"]
    assert rule_change_words(["not", "a", "dict"]) == ["not, a, dict"]
