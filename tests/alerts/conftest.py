"""Hand-built data for alert rules, and real receivers: an HTTP server and an SMTP server
started inside the test process."""

import itertools
import json
import socket
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from alerts.models import Destination, Rule
from alerts.rules import rule_save
from conversations.models import Conversation, Flag
from conversations.services import flag_raise
from handoffs.models import Handoff
from tests.support.roles import as_role  # noqa: F401 (a fixture)

_n = itertools.count(1)


def conversation(*, channel: str = "whatsapp", at: datetime) -> Conversation:
    n = next(_n)
    return Conversation.objects.create(
        channel=channel, business_address=f"+1555000{n:04d}", customer_address=f"+1666{n:06d}",
        started_at=at, last_activity_at=at, status=Conversation.Status.CLOSED)


def handoff(*, channel: str = "whatsapp", at: datetime, dropped: bool = False,
            queue: str = "") -> Handoff:
    conv = conversation(channel=channel, at=at)
    return Handoff.objects.create(
        conversation=conv, number=1, channel=channel, state="abandoned" if dropped else "engaged",
        state_entered_at=at, requested_at=at, queue=queue,
        dropped_at=at if dropped else None)


def dropped_flag(*, channel: str = "whatsapp", at: datetime, severity: str = "high",
                 queue: str = "billing") -> Flag:
    h = handoff(channel=channel, at=at, dropped=True, queue=queue)
    flag, _ = flag_raise(conversation=h.conversation, kind=Flag.Kind.HANDOFF_DROPPED,
                         severity=severity, subject_type=Flag.SubjectType.HANDOFF,
                         subject_id=h.pk, evidence={"reasons": ["closed_before_engaged"],
                                                    "waited_seconds": 1260},
                         at=at)
    return flag


def make_rule(*, destinations=(), **fields) -> Rule:
    fields.setdefault("name", f"rule {next(_n)}")
    return rule_save(data=fields, by="manager1", destinations=list(destinations))


class Receiver:
    """A real HTTP server: records each request; answers with the queued statuses (then
    200); `delay` seconds before answering."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                record = {"headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body, "path": self.path}
                receiver.requests.append(record)
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                record["status"] = status
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def json(self, i: int = -1) -> dict:
        return json.loads(self.requests[i]["body"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def local_destinations(settings):
    """The test receivers listen on http://127.0.0.1: allowed here, refused by default."""
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "ALERTS_ALLOW_HTTP": True,
                                "ALERTS_ALLOW_PRIVATE_ADDRESSES": True,
                                "ALERTS_BACKOFF_SECONDS": 0.0}


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (the controller checks it can connect)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    yield inbox
    controller.stop()


def destination(kind: str, target: str, **extra) -> Destination:
    return Destination.objects.create(name=f"{kind} {next(_n)}", kind=kind, target=target,
                                      **extra)


def minutes_ago(now: datetime, n: float) -> datetime:
    return now - timedelta(minutes=n)
