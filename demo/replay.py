"""Replaying the hand-written journeys (demo/journeys.py) through the real ingest path:
signed Twilio webhooks in, outbound messages as the AI platform reports them."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.db import transaction
from django.utils import timezone

from conversations.applier import raw_event_ingest
from conversations.events import MessageEvent
from conversations.models import (
    Channel,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
    RawEvent,
)
from conversations.services import message_record

from .journeys import SCENARIOS
from .seed import (
    ACCOUNT_SID,
    API_VERSION,
    CHANNEL_INSTALL_SID,
    FORM_CONTENT_TYPE,
    JPEG,
    MEDIA_BASE,
    OUTBOUND_MEDIA_BASE,
    PDF,
    PNG,
    PROVIDER,
    TWILIO_ERRORS,
    Line,
    Scenario,
    StatusReport,
    _country,
    sms_segments,
    twilio_sid,
)

# --- replaying a journey ----------------------------------------------------------------


@dataclass(frozen=True)
class DemoWebhook:
    """A Twilio webhook as it would have been POSTed (form fields, time received)."""

    kind: str  # "message" or "status"
    dedupe_key: str
    params: dict[str, str]
    received_at: datetime

    @property
    def body(self) -> str:
        return urlencode(self.params)


@dataclass(frozen=True)
class DemoOutbound:
    """An AI or human reply, as the agent platform reports it."""

    event: MessageEvent


TimelineStep = DemoWebhook | DemoOutbound


def _address(scenario: Scenario, number: str) -> str:
    return f"whatsapp:{number}" if scenario.channel == Channel.WHATSAPP else number


def _message_type(line: Line) -> str:
    if line.extra.get("MessageType"):
        return line.extra["MessageType"]
    if not line.media:
        return "text"
    kind = line.media[0].split("/", 1)[0]
    return {"image": "image", "audio": "audio", "video": "video"}.get(kind, "document")


def _inbound_params(scenario: Scenario, line: Line, sid: str) -> dict[str, str]:
    params = {
        "SmsMessageSid": sid,
        "NumMedia": str(len(line.media)),
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": line.body,
        "To": _address(scenario, scenario.business),
        "NumSegments": "1" if scenario.channel == Channel.WHATSAPP else str(
            sms_segments(line.body)
        ),
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": _address(scenario, scenario.customer),
        "ApiVersion": API_VERSION,
    }
    if scenario.channel == Channel.WHATSAPP:
        params |= {
            "ProfileName": scenario.profile_name,
            "WaId": scenario.customer.lstrip("+"),
            "MessageType": _message_type(line),
            "ReferralNumMedia": "0",
        }
    else:
        params |= {"FromCountry": _country(scenario.customer),
                   "ToCountry": _country(scenario.business)}
    for i, content_type in enumerate(line.media):
        media_sid = twilio_sid("ME", "demo", scenario.key, sid, i)
        params[f"MediaContentType{i}"] = content_type
        params[f"MediaUrl{i}"] = f"{MEDIA_BASE}/{sid}/Media/{media_sid}"
    params |= {k: v for k, v in line.extra.items() if k != "MessageType"}
    return params


def _status_params(
    scenario: Scenario, sid: str, report: StatusReport, at: datetime
) -> dict[str, str]:
    params = {
        "ApiVersion": API_VERSION,
        "MessageStatus": report.status,
        "SmsSid": sid,
        "SmsStatus": report.status,
        "To": _address(scenario, scenario.customer),
        "From": _address(scenario, scenario.business),
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
    }
    if scenario.channel == Channel.WHATSAPP:
        masked = scenario.customer[:-5] + "XXXXX"
        params |= {"ChannelPrefix": "whatsapp", "ChannelInstallSid": CHANNEL_INSTALL_SID,
                   "ChannelToAddress": masked}
    elif report.status == "delivered":
        params["RawDlrDoneDate"] = at.strftime("%y%m%d%H%M")
    if report.error_code:
        params["ErrorCode"] = report.error_code
        params["ErrorMessage"] = TWILIO_ERRORS.get(report.error_code, "")
    return params


def _usual_statuses(scenario: Scenario, next_customer_after: float | None) -> tuple[
    StatusReport, ...
]:
    if scenario.channel != Channel.WHATSAPP:
        return (StatusReport("sent", 2), StatusReport("delivered", 6))
    # Read within a minute and a half, and before the customer's next message.
    read_after = 90.0 if next_customer_after is None else min(90.0, next_customer_after - 4)
    return (
        StatusReport("sent", 1.5),
        StatusReport("delivered", 4),
        StatusReport("read", max(read_after, 5)),
    )


def _outbound_media(scenario: Scenario, index: int, content_types: Sequence[str]) -> list[
    dict[str, str]
]:
    extensions = {PDF: "pdf", JPEG: "jpg", PNG: "png"}
    return [
        {
            "url": f"{OUTBOUND_MEDIA_BASE}/{scenario.key}/{index}-{i}."
                   f"{extensions.get(content_type, 'bin')}",
            "content_type": content_type,
        }
        for i, content_type in enumerate(content_types)
    ]


def scenario_timeline(*, scenario: Scenario, now: datetime) -> list[TimelineStep]:
    """The journey's webhooks and reported replies, in the order they reach the auditor."""
    start = now - scenario.started_ago
    steps: list[tuple[datetime, int, TimelineStep]] = []

    def add(at: datetime, step: TimelineStep) -> None:
        if at > now:
            raise ValueError(f"demo scenario {scenario.key} runs into the future")
        steps.append((at, len(steps), step))

    for index, line in enumerate(scenario.lines):
        at = start + timedelta(minutes=line.at)
        prefix = "MM" if line.media else "SM"
        sid = twilio_sid(prefix, "demo", scenario.key, index)
        if line.agent is None:
            params = _inbound_params(scenario, line, sid)
            add(at, DemoWebhook("message", f"message:{sid}", params, at))
            continue
        event = MessageEvent(
            channel=scenario.channel,
            direction=Direction.OUTBOUND,
            author_kind=line.agent.kind,
            provider=PROVIDER,
            provider_message_id=sid,
            business_address=scenario.business,
            customer_address=scenario.customer,
            occurred_at=at,
            body=line.body,
            author_id=line.agent.id,
            author_name=line.agent.name,
            author_metadata=dict(line.agent.metadata),
            num_segments=1 if scenario.channel == Channel.WHATSAPP else sms_segments(line.body),
            media=_outbound_media(scenario, index, line.media),
            # What Twilio's Messages API answers when the platform sends it.
            status=DeliveryStatus.QUEUED,
            metadata=dict(line.metadata),
        )
        add(at + timedelta(seconds=line.reported_after), DemoOutbound(event))
        next_customer = next(
            (later.at for later in scenario.lines[index + 1:] if later.agent is None), None
        )
        gap = None if next_customer is None else (next_customer - line.at) * 60
        for report in line.statuses or _usual_statuses(scenario, gap):
            status_at = at + timedelta(seconds=report.after)
            params = _status_params(scenario, sid, report, status_at)
            add(status_at, DemoWebhook("status", f"status:{sid}:{report.status}", params,
                                       status_at))
    return [step for _, _, step in sorted(steps, key=lambda s: (s[0], s[1]))]


@dataclass
class DemoSeedReport:
    conversations: int = 0
    messages: int = 0
    status_callbacks: int = 0
    raw_events: int = 0
    failed: list[str] = field(default_factory=list)  # dedupe keys of failed raw events

    @property
    def added_nothing(self) -> bool:
        return not (self.messages or self.status_callbacks or self.raw_events)


def demo_scenarios_seed(
    *, now: datetime | None = None, scenarios: Sequence[Scenario] = SCENARIOS
) -> DemoSeedReport:
    """Replay the hand-written journeys through the ingest path; what exists is skipped.

    Timestamps are relative to `now`, but identity is the SID, so a later run finds every
    journey already there and adds nothing.
    """
    now = now or timezone.now()
    report = DemoSeedReport()
    for scenario in scenarios:
        steps = scenario_timeline(scenario=scenario, now=now)
        with transaction.atomic():  # a journey lands whole or not at all
            _scenario_apply(scenario=scenario, steps=steps, report=report)
    return report


def _scenario_apply(
    *, scenario: Scenario, steps: Sequence[TimelineStep], report: DemoSeedReport
) -> None:
    # Checked up front so a re-run neither hits the unique indexes (an error line each in
    # the PostgreSQL log) nor counts anything.
    keys = [s.dedupe_key for s in steps if isinstance(s, DemoWebhook)]
    known_keys = set(
        RawEvent.objects.filter(provider=PROVIDER, dedupe_key__in=keys).values_list(
            "dedupe_key", flat=True
        )
    )
    sids = [s.event.provider_message_id for s in steps if isinstance(s, DemoOutbound)]
    known_sids = set(
        Message.objects.filter(provider=PROVIDER, provider_message_id__in=sids).values_list(
            "provider_message_id", flat=True
        )
    )
    had_thread = Conversation.objects.filter(
        channel=scenario.channel,
        business_address=scenario.business,
        customer_address=scenario.customer,
        status=Conversation.Status.OPEN,
    ).exists()
    added_messages = 0
    for step in steps:
        if isinstance(step, DemoOutbound):
            if step.event.provider_message_id in known_sids:
                continue
            message_record(event=step.event)
            added_messages += 1
            continue
        if step.dedupe_key in known_keys:
            continue
        result = raw_event_ingest(
            provider=PROVIDER,
            kind=step.kind,
            dedupe_key=step.dedupe_key,
            body=step.body,
            content_type=FORM_CONTENT_TYPE,
            # Honest provenance: these requests were made up here, not sent by Twilio.
            headers={"Content-Type": FORM_CONTENT_TYPE, "User-Agent": "handoff-auditor/seed_demo"},
            received_at=step.received_at,
        )
        if result.duplicate:
            continue
        report.raw_events += 1
        if result.raw_event.status == RawEvent.Status.FAILED:
            report.failed.append(step.dedupe_key)
        elif step.kind == "message":
            added_messages += 1
        else:
            report.status_callbacks += 1
    report.messages += added_messages
    if added_messages and not had_thread:
        report.conversations += 1
