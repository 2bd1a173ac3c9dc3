"""What a delivery says: one JSON payload per alert event (the signed webhook's body, see
alerts/schemas/alert-webhook.schema.json), rendered for Slack, PagerDuty and e-mail at send
time. Built from the alert's figures only: no message text, no customer contact."""

from typing import Any

from django.urls import NoReverseMatch, reverse

from conversations.conf import auditor_settings

from .conf import alerts_setting
from .models import Alert, Delivery

SCHEMA_VERSION = 1


def base_url() -> str:
    return (alerts_setting("ALERTS_BASE_URL") or auditor_settings.PUBLIC_BASE_URL or "").rstrip("/")


def _url(name: str, *args: Any) -> str:
    try:
        return base_url() + reverse(name, args=args)
    except NoReverseMatch:  # a host that does not mount the pages
        return ""


def alert_links(alert: Alert) -> dict[str, str]:
    inbox = _url("audit:inbox")
    return {"alert_url": _url("audit:alert", alert.pk),
            "inbox_url": f"{inbox}?alert={alert.pk}" if inbox else ""}


def alert_payload(alert: Alert, event: str, *, at: Any) -> dict[str, Any]:
    rule = alert.rule
    return {
        "schema_version": SCHEMA_VERSION,
        "type": f"alert.{event}",
        "timestamp": at.isoformat(),
        "alert": {
            "id": alert.pk,
            "state": alert.state,
            "severity": alert.severity,
            "title": alert.title,
            "summary": alert.summary,
            "group": alert.group_key,
            "value": alert.value,
            "threshold": alert.threshold,
            "sample": alert.sample,
            "occurrences": alert.occurrences,
            "first_fired_at": alert.first_fired_at.isoformat(),
            "last_fired_at": alert.last_fired_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "acknowledged_by": alert.acknowledged_by or None,
            "conversations": len(alert.conversation_ids),
            **alert_links(alert),
        },
        "rule": {"id": rule.pk, "name": rule.name, "kind": rule.kind, "version": rule.version},
    }


def digest_payload(items: list[Delivery], *, period: str, at: Any) -> dict[str, Any]:
    alerts = [d.payload for d in items]
    fired = sum(1 for p in alerts if p["type"] == "alert.fired")
    resolved = sum(1 for p in alerts if p["type"] == "alert.resolved")
    return {
        "schema_version": SCHEMA_VERSION,
        "type": "alert.digest",
        "timestamp": at.isoformat(),
        "period": period,
        "summary": f"{_n(fired, 'alert')} fired and {resolved} resolved in the last "
                   f"{'hour' if period == 'hourly' else 'day'}.",
        "items": alerts,
    }


def test_payload(*, at: Any, destination_name: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "type": "alert.test",
        "timestamp": at.isoformat(),
        "summary": f"Test message from Handoff Auditor to the destination {destination_name}.",
    }


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# --- rendering per destination ------------------------------------------------------------

_EMOJI = {"alert.fired": ":rotating_light:", "alert.resolved": ":white_check_mark:",
          "alert.acknowledged": ":eyes:", "alert.digest": ":bookmark_tabs:",
          "alert.test": ":wave:"}


def headline(payload: dict[str, Any]) -> str:
    kind = payload["type"]
    if kind == "alert.digest" or kind == "alert.test":
        return payload["summary"]
    alert = payload["alert"]
    verb = {"alert.fired": "Alert", "alert.resolved": "Resolved",
            "alert.acknowledged": "Acknowledged", "alert.repeated": "Again"}[kind]
    return f"{verb}: {alert['title']}"


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    """Slack incoming webhook, Block Kit: header, the sentence, links as buttons."""
    text = headline(payload)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}},
    ]
    if payload["type"] == "alert.digest":
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(
            f"• *{p['alert']['title']}* ({p['type'].removeprefix('alert.')}): "
            f"{p['alert']['summary']}" for p in payload["items"][:40])[:2900] or "Nothing."}})
    elif "alert" in payload:
        alert = payload["alert"]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"{_EMOJI.get(payload['type'], '')} {alert['summary']}")[:2900]}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"Severity *{alert['severity']}* · rule _{payload['rule']['name']}_ · "
            f"{_n(alert['occurrences'], 'occurrence')}")}]})
        buttons = [{"type": "button", "text": {"type": "plain_text", "text": label},
                    "url": url} for label, url in (("Open alert", alert["alert_url"]),
                                                    ("Conversations", alert["inbox_url"]))
                   if url]
        if buttons:
            blocks.append({"type": "actions", "elements": buttons})
    else:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": payload["summary"]}})
    return {"text": text, "blocks": blocks}


_PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info",
                "info": "info"}


def pagerduty_body(payload: dict[str, Any], *, routing_key: str) -> dict[str, Any] | None:
    """PagerDuty Events API v2: trigger, acknowledge or resolve, deduplicated per alert.
    None for what PagerDuty has no action for (digests)."""
    kind = payload["type"]
    if kind == "alert.test":
        return {"routing_key": routing_key, "event_action": "trigger",
                "dedup_key": f"handoff-auditor-test-{payload['timestamp']}",
                "payload": {"summary": payload["summary"], "source": "handoff-auditor",
                            "severity": "info"}}
    action = {"alert.fired": "trigger", "alert.acknowledged": "acknowledge",
              "alert.resolved": "resolve"}.get(kind)
    if action is None:
        return None
    alert = payload["alert"]
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                            "dedup_key": f"handoff-auditor-alert-{alert['id']}"}
    if action == "trigger":
        body["payload"] = {
            "summary": f"{alert['title']}: {alert['summary']}"[:1024],
            "source": "handoff-auditor",
            "severity": _PD_SEVERITY.get(alert["severity"], "error"),
            "timestamp": alert["last_fired_at"],
            "component": payload["rule"]["kind"],
            "group": alert["group"] or None,
            "class": payload["rule"]["name"],
            "custom_details": {k: alert[k] for k in ("value", "threshold", "sample",
                                                     "occurrences", "conversations")},
        }
        body["links"] = [{"href": alert[k], "text": text} for k, text in
                         (("alert_url", "Alert"), ("inbox_url", "Conversations")) if alert[k]]
    return body


def email_message(payload: dict[str, Any]) -> tuple[str, str]:
    """(subject, plain-text body)."""
    subject = f"[Handoff Auditor] {headline(payload)}"[:200]
    if payload["type"] == "alert.digest":
        lines = [payload["summary"], ""] + [
            f"- {p['alert']['title']} ({p['type'].removeprefix('alert.')}): "
            f"{p['alert']['summary']}  {p['alert']['alert_url']}" for p in payload["items"]]
        return subject, "\n".join(lines)
    if "alert" not in payload:
        return subject, payload["summary"]
    alert = payload["alert"]
    lines = [alert["summary"], "",
             f"Severity: {alert['severity']}", f"Rule: {payload['rule']['name']}",
             f"Occurrences: {alert['occurrences']}",
             f"First fired: {alert['first_fired_at']}"]
    if alert["alert_url"]:
        lines.append(f"Alert: {alert['alert_url']}")
    if alert["inbox_url"]:
        lines.append(f"Conversations: {alert['inbox_url']}")
    return subject, "\n".join(lines)
