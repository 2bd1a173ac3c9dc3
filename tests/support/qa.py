"""Rows the QA tests build: a small scorecard, conversations, messages, automated scores,
flags, submitted reviews, reviewers with their role, queues."""

from datetime import UTC, datetime

from django.contrib.auth.models import Group, User
from django.test import Client

from audit.qa_models import ReviewQueue
from audit.roles import roles_ensure
from conversations.models import AuthorKind, Conversation, Direction, Flag, Message
from conversations.services import flag_raise
from scoring.models import Score
from scoring.qa import review_submit

WEEK1 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # the queues tests' start

# A small scorecard: every scale, N/A, a weight, a critical category.
CARD = [
    {"key": "greeting", "label": "Greeting", "scale": "yes_no", "weight": 1},
    {"key": "empathy", "label": "Empathy", "scale": "one_five", "weight": 2},
    {"key": "accuracy", "label": "Accuracy", "scale": "yes_no", "weight": 3, "critical": True},
    {"key": "closing", "label": "Closing", "scale": "yes_no", "weight": 1, "na_allowed": True},
]


_seq = iter(range(1, 10_000))


def conversation(at: datetime = WEEK1) -> Conversation:
    return Conversation.objects.create(
        channel="whatsapp", business_address="+14155550100",
        customer_address=f"+346000{next(_seq):05d}", started_at=at, last_activity_at=at)


def message(conv: Conversation, *, author_kind: str = AuthorKind.AI,
            direction: str = Direction.OUTBOUND) -> Message:
    return Message.objects.create(conversation=conv, direction=direction,
                                  author_kind=author_kind, body="Hello", provider="events",
                                  sent_at=conv.started_at)


def auto_score(msg: Message, name: str, value: float, author: str = "v1") -> Score:
    return Score.objects.create(
        subject_type="message", subject_id=msg.pk, conversation=msg.conversation, message=msg,
        name=name, value=value, source="auto", author=f"{name}@{author}",
        channel=msg.conversation.channel, author_kind=msg.author_kind, occurred_at=msg.sent_at)


def flag(conv: Conversation, kind: str = "tone_off_brand", subject_id: int | None = None) -> Flag:
    f, _ = flag_raise(conversation=conv, kind=kind, severity="medium",
                      subject_type="conversation" if subject_id is None else "message",
                      subject_id=subject_id or conv.pk, evidence={})
    return f


def full(greeting=1, empathy=3, accuracy=1, closing=1) -> dict:
    return {"greeting": greeting, "empathy": empathy, "accuracy": accuracy, "closing": closing}


def submit(user, conv, version, verdicts=(), **answers):
    return review_submit(reviewer=user, conversation=conv, version=version,
                         answers=full(**answers), verdicts=verdicts)


def person(name: str, role: str | None = "qa_reviewer") -> User:
    roles_ensure()
    user = User.objects.create_user(username=name, password="pw")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def client_of(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def conversations(n: int, channel: str = "whatsapp", at: datetime = T0) -> list[Conversation]:
    return Conversation.objects.bulk_create([
        Conversation(channel=channel, business_address="+14155550100",
                     customer_address=f"+3460{channel[:1]}{i:06d}", started_at=at,
                     last_activity_at=at, status="closed")
        for i in range(n)])


def queue(card, **kw) -> ReviewQueue:
    return ReviewQueue.objects.create(name=kw.pop("name", "q"), scorecard=card.scorecard, **kw)
