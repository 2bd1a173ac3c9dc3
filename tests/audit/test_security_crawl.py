"""Issue 13, item 2: a viewer without view_pii crawls every page, API object and CSV, with a
phone number and an e-mail address planted in every stored text field (JSON included), and
finds neither. The masking gate (audit.masking.response_mask) is what every surface passes
through, so a field added later is masked without asking."""

import itertools
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.db import models
from django.test import Client

from alerts.lifecycle import alert_acknowledge
from alerts.models import Alert, Delivery, Destination, FlagWatermark, Rule
from alerts.rules import rule_save
from alerts.services import alerts_evaluate_flags
from audit.dashboard_selectors import dashboard_period
from audit.qa_models import ReviewQueue
from audit.roles import PII, roles_ensure
from audit.rollups import rollups_rebuild
from audit.selectors_outcomes import GROUP_KINDS, release_keys
from conversations.models import (
    AIStep,
    Conversation,
    ConversationEvent,
    Customer,
    CustomerIdentity,
    Flag,
    Message,
    MessageStatusEvent,
    Outcome,
)
from conversations.services import flag_set_status
from demo.scenarios import scenario_get
from scoring.qa import MessageNote, review_draft_save, scorecard_default_ensure
from tests.support.scenarios import play

pytestmark = pytest.mark.django_db

SCENARIOS = ("whatsapp-window-expired", "sms-ai-kept-talking", "web-on-time",
             "web-missed-request")
APPS = ("conversations", "handoffs", "scoring", "audit", "auditor_channels", "alerts")
# What a viewer must never read: the planted numbers (any separator) and mailboxes.
LEAKS = re.compile(r"415\W{0,3}555|zoe\d+@|zoe\d+%40", re.IGNORECASE)
# Configuration, not anyone's data (a calendar's hours, a policy snapshot, brand voices,
# dashboard rollups): left as they are so the pages still work.
CONFIG = {"handoffs.businesscalendar", "handoffs.slapolicy", "scoring.brandvoice",
          "audit.conversationdaily", "audit.releasedaily", "audit.handoffdaily",
          "audit.dashboardday", "audit.outcomedaily", "handoffs.handoff.policy",
          "handoffs.handoff.dropped_reasons",
          "audit.reviewqueue.channel_percent", "audit.reviewqueue.flag_kinds"}
_n = itertools.count(10)


def pii() -> str:
    n = next(_n) % 90 + 10
    return f"+1 415 555 01{n} zoe{n}@exämple.de"


def planted_json(value):
    if isinstance(value, dict):
        return {**{k: planted_json(v) for k, v in value.items()}, "contact": pii()}
    if isinstance(value, list):
        extra = planted_json(value[0]) if value and isinstance(value[0], dict) else pii()
        return [planted_json(v) for v in value] + [extra]
    if isinstance(value, str):
        return f"{value} {pii()}"
    return value if value is not None else {"contact": pii()}


def plant_everywhere() -> int:
    """Every text and JSON field of every row of ours (not the choice fields) gets PII."""
    planted = 0
    for label in APPS:
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        for model in config.get_models():
            if model._meta.proxy or not model._meta.managed or model._meta.label_lower in CONFIG:
                continue
            fields = [f for f in model._meta.concrete_fields
                      if isinstance(f, (models.CharField, models.TextField, models.JSONField))
                      and not f.choices and not f.primary_key
                      and f"{model._meta.label_lower}.{f.name}" not in CONFIG]
            for row in model.objects.all():
                for f in fields:
                    value = getattr(row, f.attname)
                    if isinstance(f, models.JSONField):
                        new = planted_json(value)
                    else:
                        text = pii()
                        room = (f.max_length or 10_000) - len(text) - 1
                        if room < 0:
                            text = text.split(" zoe")[0]  # the phone number alone
                            room = (f.max_length or 10_000) - len(text) - 1
                            if room < 0:
                                continue
                        new = f"{(value or '')[:room]} {text}".strip()
                    setattr(row, f.attname, new)
                    planted += 1
                row.save(update_fields=[f.name for f in fields] or None)
    return planted


@pytest.fixture
def planted(client, settings):
    for key in SCENARIOS:
        play(client, settings, scenario_get(key))
    client.logout()
    roles_ensure()
    conversation = Conversation.objects.order_by("pk").first()
    message = Message.objects.filter(conversation=conversation).first()
    at = conversation.last_activity_at
    # Rows of the kinds the probe found unmasked, in case the scenarios have none.
    AIStep.objects.create(
        conversation=conversation, message=message, external_id="step-pii", occurred_at=at,
        operation="execute_tool", tool_name="lookup", tool_arguments={"q": "x"},
        tool_error="timeout", retrieved_documents=[{"id": "d1", "title": "t", "source": "s",
                                                     "score": 0.4}],
        guardrails=[{"name": "g", "passed": False}])
    # A turn traced over OTLP (the replay's span tree) and a customer across channels.
    for n, parent in ((1, ""), (2, "0000000000000001")):
        AIStep.objects.create(
            conversation=conversation, external_id=f"otlp-pii-{n}", occurred_at=at,
            operation="chat", trace_id="ab" * 16, span_id=f"{n:016x}", parent_span_id=parent,
            latency_ms=100 * n, span_name="chat", system_prompt="be kind",
            input_messages=[{"role": "user", "content": "hi"}],
            output_messages=[{"role": "assistant", "content": "hello"}],
            tool_error="boom", error_type="Timeout")
    person = Customer.objects.create(display_name="Zoe", created_at=at)
    CustomerIdentity.objects.create(customer=person, kind="email", value="zoe@x.test",
                                    created_at=at)
    Conversation.objects.filter(pk__in=Conversation.objects.values("pk")[:2]).update(
        customer=person)
    ConversationEvent.objects.create(conversation=conversation, external_id="ev-pii",
                                     type="handoff.requested", occurred_at=at,
                                     data={"reason": "asked"})
    Outcome.objects.create(conversation=conversation, external_id="out-pii", occurred_at=at,
                           verdict="fine", csat=3)
    MessageStatusEvent.objects.create(
        message=message, conversation=conversation, provider="sendgrid",
        provider_message_id="m-pii", status="failed", error_code="550",
        error_message="550 5.1.1 bounce", occurred_at=at + timedelta(seconds=1))
    flag = Flag.objects.filter(conversation=conversation).first() or Flag.objects.first()
    flag_set_status(flag=flag, status=Flag.Status.ACKNOWLEDGED, by="lead", note="called")
    version = scorecard_default_ensure()
    reviewer = User.objects.create_user("reviewer-pii")
    review_draft_save(reviewer=reviewer, conversation=conversation, version=version,
                      answers={}, notes=[MessageNote(message.pk, "label", "note")],
                      comment="draft")
    ReviewQueue.objects.create(name="q", description="d", scorecard=version.scorecard)
    hook = Destination.objects.create(name="hook", kind="slack", target="https://hooks.test/x")
    rule = rule_save(data={"name": "all flags", "kind": "flag", "description": "any"},
                     by="lead", destinations=[hook])
    FlagWatermark.objects.update(last_id=0)
    alerts_evaluate_flags()
    alert = Alert.objects.filter(rule=rule).first()
    alert_acknowledge(alert=alert, by="lead", note="on it")
    Delivery.objects.update(status="dead", last_error="refused")
    count = plant_everywhere()
    assert count > 100
    # The report pages read the daily rollups: built from the planted facts (agent names,
    # queues, teams, models and revenue currencies all carry PII now).
    rollups_rebuild(days=90)
    return conversation


def crawler() -> Client:
    """Every permission of the auditor's but view_pii: the most a viewer could be given."""
    user = User.objects.create_user("crawler")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="audit")
                              .exclude(codename=PII))
    client = Client()
    client.force_login(user)
    return client


def read(client: Client, url: str) -> tuple[int, str]:
    response = client.get(url)
    if response.streaming:
        body = b"".join(response.streaming_content)
    else:
        body = response.content
    return response.status_code, body.decode()


def api_urls(client: Client) -> list[str]:
    urls = ["/api/metrics/handoffs/?since=2000-01-01&until=2100-01-01"]
    year = "since=2026-01-01&until=2026-12-31"
    urls += [f"/api/reports/outcomes/?{year}", f"/api/reports/qa/?{year}",
             f"/api/reports/compare/?{year}&split=2026-11-18"]
    urls += [f"/api/reports/groups/?{year}&kind={kind}" for kind in GROUP_KINDS]
    for path, detail in (("conversations", "conversations"), ("messages", None),
                         ("handoffs", "handoffs"), ("flags", "flags"), ("scores", None),
                         ("qa/queues", "qa/queues"), ("qa/reviews", "qa/reviews")):
        url = f"/api/{path}/?page_size=200"
        while url:
            urls.append(url)
            page = client.get(url).json()
            for row in page["results"]:
                pk = row["conversation"]["id"] if path == "conversations" else row["id"]
                if detail:
                    urls.append(f"/api/{detail}/{pk}/")
            url = page["next"]
    return urls


def test_a_viewer_finds_no_planted_pii_on_any_page_api_object_or_csv(planted):
    viewer = crawler()
    pages = ["/", "/?period=7d", "/inbox/?sort=severity", "/inbox/?q=zoe",
             "/inbox/?problem=handoff", "/dashboards/", "/qa/",
             "/qa/agreement/", "/export.csv", "/qa/reviews.csv", "/inbox/?since=2026-13-01",
             "/reports/?days=90", "/reports/qa/?days=90", "/reports/compare/?days=90",
             "/reports/report.csv?days=90", "/reports/report.csv?days=90&report=qa"]
    pages += [f"/reports/per/{kind}/?days=90" for kind in GROUP_KINDS]
    pages += [f"/reports/report.csv?days=90&report={kind}" for kind in GROUP_KINDS]
    for kind, keys in release_keys(period=dashboard_period(days=90)).items():
        if len(keys) > 1:
            pages.append(f"/reports/compare/?days=90&kind={kind}&a={quote(keys[0])}"
                         f"&b={quote(keys[1])}")
    for c in Conversation.objects.all():
        pages += [f"/conversations/{c.pk}/", f"/conversations/{c.pk}/raw/"]
    pages += [f"/qa/queues/{q.pk}/edit/" for q in ReviewQueue.objects.all()]
    pages += ["/customers/", *(f"/customers/{c.pk}/" for c in Customer.objects.all())]
    pages += ["/alerts/", "/alerts/?state=all", "/alerts/rules/", "/alerts/destinations/"]
    pages += [f"/alerts/{a.pk}/" for a in Alert.objects.all()]
    pages += [f"/alerts/rules/{r.pk}/edit/" for r in Rule.objects.all()]
    pages += [f"/alerts/destinations/{d.pk}/edit/" for d in Destination.objects.all()]
    pages += [f"/api/alerts/{a.pk}/" for a in Alert.objects.all()]
    pages += ["/api/alerts/", "/api/alert-rules/"]
    pages += [f"/api/alert-rules/{r.pk}/" for r in Rule.objects.all()]
    urls = pages + api_urls(viewer)
    assert len(urls) > 30
    for url in urls:
        status, body = read(viewer, url)
        assert status < 500, (url, status)
        found = LEAKS.search(body)
        assert found is None, (url, body[max(0, found.start() - 200):found.end() + 100])


def test_a_manager_sees_what_was_planted(planted):
    """The crawl means something: the same pages show the PII to those who may see it."""
    manager = Client()
    manager.force_login(User.objects.create_superuser("boss"))
    _, replay = read(manager, f"/conversations/{planted.pk}/")
    for planted_in in ("timeout", "asked", "fine", "550 5.1.1 bounce", "called"):
        assert re.search(re.escape(planted_in) + r" \+1 415 555 01\d\d zoe\d+@", replay), \
            planted_in
    _, detail = read(manager, f"/api/conversations/{planted.pk}/")
    assert len(LEAKS.findall(detail)) > 20
