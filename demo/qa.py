"""Demo QA data for `seed_demo`: two queues and submitted reviews by two demo reviewers,
some items reviewed by both (blind double review), so the agreement page has figures on
`make run`. Idempotent: nothing is added once the demo queues exist.

The reviewers' answers are made up but steady (from a hash of the conversation id), with
the odd disagreement, and the demo-qa login finds items left to take."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from audit.qa_models import ReviewQueue
from audit.qa_queues import queue_fill, queue_review_submit, slot_take_next
from audit.roles import roles_ensure
from conversations.models import Channel, Flag
from scoring.qa import scorecard_default_ensure

SAMPLE, DROPPED = "Weekly sample", "Dropped handoffs"
REVIEWERS = ("qa-ana", "qa-ben")
LEFT_FOR_DEMO = 3  # items of the sample queue nobody takes, for the demo-qa login


@dataclass
class DemoQAReport:
    queues: int = 0
    items: int = 0
    reviews: int = 0


def _h(*parts: object) -> int:
    value = 2166136261
    for ch in ":".join(map(str, parts)).encode():
        value = ((value ^ ch) * 16777619) % 2**32
    return value


def _answers(conversation_id: int, reviewer: str) -> dict[str, object]:
    """A steady made-up scorecard; the second reviewer differs on some categories."""
    base = _h(conversation_id)
    differ = reviewer == REVIEWERS[1] and _h(conversation_id, "differ") % 4 == 0
    empathy = 2 + base % 4
    return {
        "greeting": int(base % 5 != 0) ^ int(differ and base % 2 == 0),
        "empathy": max(1, min(5, empathy + (1 if differ else 0))),
        "brand_tone": 2 + (base >> 3) % 4 - (1 if differ and base % 3 == 0 else 0),
        "solution_offered": {"na": True} if base % 7 == 0 else int((base >> 5) % 3 != 0),
        "handoff_needed": int((base >> 7) % 2),
        "handoff_on_time": {"na": True} if (base >> 7) % 2 == 0 else int((base >> 9) % 3 != 0),
        "accuracy": int((base >> 11) % 6 != 0) if not differ else 1,
        "closing": int((base >> 13) % 4 != 0) ^ int(differ and base % 5 == 1),
    }


def demo_qa_seed() -> DemoQAReport:
    report = DemoQAReport()
    if ReviewQueue.objects.filter(name__in=(SAMPLE, DROPPED)).exists():
        return report
    roles_ensure()
    version = scorecard_default_ensure()
    group = Group.objects.get(name="qa_reviewer")
    users = []
    for name in REVIEWERS:
        user, created = get_user_model().objects.get_or_create(username=name)
        if created:
            user.set_unusable_password()
            user.save()
        user.groups.add(group)
        users.append(user)
    with transaction.atomic():
        sample = ReviewQueue.objects.create(
            name=SAMPLE, scorecard=version.scorecard, created_by="seed_demo",
            description="Half of every channel, plus every off-brand or PII flag; 40% "
                        "reviewed twice, blind.",
            channel_percent={c: 50 for c in Channel.values},
            flag_kinds=["tone_off_brand", "pii_leak"], double_percent=40)
        dropped = ReviewQueue.objects.create(
            name=DROPPED, scorecard=version.scorecard, created_by="seed_demo",
            description="Every conversation whose handoff was dropped.", dropped_handoffs=True)
    report.queues = 2
    report.items = queue_fill(queue=sample) + queue_fill(queue=dropped)
    total = sample.items.count()
    for turn in range(max(0, 2 * total)):
        user = users[turn % 2]
        if sample.slots.filter(reviewer__isnull=True).count() <= LEFT_FOR_DEMO:
            break
        slot = slot_take_next(queue=sample, reviewer=user)
        if slot is None:
            continue
        conversation = slot.item.conversation
        # Only dropped-handoff flags are ever dismissed here: the handoff scenarios promise
        # the other kinds' statuses (tests/demo/test_seed_demo.py checks them).
        verdicts = [
            {"flag_id": f.pk, "verdict": "false_positive"
             if f.kind == "handoff_dropped" and _h(f.pk, user.username) % 3 == 0
             else "confirmed"}
            for f in Flag.objects.filter(conversation=conversation,
                                         status__in=Flag.ACTIVE_STATUSES)
        ]
        queue_review_submit(reviewer=user, conversation=conversation, version=version,
                            answers=_answers(conversation.pk, user.username),
                            verdicts=verdicts)
        report.reviews += 1
    return report
