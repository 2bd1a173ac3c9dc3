import pytest
from django.utils import timezone

from conversations.models import Conversation, Flag
from conversations.services import flag_raise, flag_set_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation():
    now = timezone.now()
    return Conversation.objects.create(
        channel="whatsapp", business_address="+14155238886", customer_address="+34600000001",
        started_at=now, last_activity_at=now,
    )


def raise_stalled(conversation, waited):
    return flag_raise(
        conversation=conversation, kind="handoff_stalled", severity="high",
        subject_type="conversation", subject_id=conversation.pk,
        evidence={"state": "queued", "waited_seconds": waited, "allowed_seconds": 600},
    )


def test_raising_the_same_finding_twice_keeps_one_open_flag_with_fresh_evidence(conversation):
    first, created = raise_stalled(conversation, 700)
    again, created_again = raise_stalled(conversation, 900)
    assert created and not created_again
    assert again.pk == first.pk
    assert Flag.objects.count() == 1
    assert Flag.objects.get().evidence["waited_seconds"] == 900


def test_acknowledged_flag_is_still_the_active_one(conversation):
    flag, _ = raise_stalled(conversation, 700)
    flag_set_status(flag=flag, status=Flag.Status.ACKNOWLEDGED, by="maria", note="on it")
    again, created = raise_stalled(conversation, 800)
    assert not created and again.pk == flag.pk
    assert again.status == Flag.Status.ACKNOWLEDGED


def test_a_resolved_finding_that_recurs_opens_a_new_flag(conversation):
    flag, _ = raise_stalled(conversation, 700)
    flag_set_status(flag=flag, status=Flag.Status.RESOLVED, by="maria", note="human replied")
    flag.refresh_from_db()
    assert flag.status_changed_by == "maria" and flag.note == "human replied"
    assert flag.status_changed_at is not None
    new, created = raise_stalled(conversation, 650)
    assert created and new.pk != flag.pk
    assert Flag.objects.count() == 2


def test_different_kinds_on_one_subject_are_separate_flags(conversation):
    raise_stalled(conversation, 700)
    flag_raise(
        conversation=conversation, kind="handoff_dropped", severity="critical",
        subject_type="conversation", subject_id=conversation.pk, evidence={"reason": "closed"},
    )
    assert Flag.objects.count() == 2
