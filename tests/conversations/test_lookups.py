"""`__any`: the one-parameter list lookup the applier and the sweep use for their batches'
ids matches exactly what `__in` matches, on PostgreSQL and SQLite."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, Flag, Message
from handoffs.models import Handoff


@pytest.fixture
def rows():
    now = timezone.now()
    conversations = [Conversation.objects.create(
        channel="web", business_address="widget:any", customer_address=f"v-{i}",
        started_at=now - timedelta(minutes=i), last_activity_at=now) for i in range(6)]
    for i, c in enumerate(conversations[:4]):
        Message.objects.create(conversation=c, direction="inbound", author_kind="customer",
                               body=f"hello {i}", provider="events",
                               provider_message_id=f"any-{i}", sent_at=now)
        Handoff.objects.create(conversation=c, number=1, channel="web", state="requested",
                               state_entered_at=now, requested_at=now)
    return conversations


@pytest.mark.django_db
def test_any_matches_what_in_matches(rows):
    ids = [c.pk for c in rows[1:5]]
    for model, name, values in (
        (Conversation, "pk", ids),
        (Message, "conversation_id", ids),
        (Message, "conversation", ids),          # through the relation
        (Handoff, "conversation_id", set(ids)),  # any iterable
        (Message, "provider_message_id", ["any-1", "any-3", "none"]),
    ):
        wanted = sorted(model.objects.filter(**{f"{name}__in": values})
                        .values_list("pk", flat=True))
        got = sorted(model.objects.filter(**{f"{name}__any": values})
                     .values_list("pk", flat=True))
        assert got == wanted and wanted, (model.__name__, name)
        left = sorted(model.objects.exclude(**{f"{name}__any": values})
                      .values_list("pk", flat=True))
        assert left == sorted(model.objects.exclude(**{f"{name}__in": values})
                              .values_list("pk", flat=True))


@pytest.mark.django_db
def test_any_of_nothing_matches_nothing_and_excludes_nothing(rows):
    assert not Conversation.objects.filter(pk__any=[]).exists()
    assert Conversation.objects.exclude(pk__any=[]).count() == len(rows)
    assert Flag.objects.filter(subject_id__any=[]).count() == 0


@pytest.mark.django_db
def test_any_takes_thousands_of_ids_as_one_parameter(rows, django_assert_num_queries):
    many = list(range(10**6, 10**6 + 5000)) + [rows[0].pk]
    with django_assert_num_queries(1) as context:
        assert list(Conversation.objects.filter(pk__any=many).values_list("pk", flat=True)) \
            == [rows[0].pk]
    sql = context.captured_queries[0]["sql"]
    assert "= ANY(" in sql or "json_each(" in sql
    assert " IN (" not in sql.replace("IN (SELECT value FROM json_each(", "")


@pytest.mark.django_db
def test_a_json_key_named_any_is_still_a_key(rows):
    conversation = rows[0]
    Flag.objects.create(conversation=conversation, kind="handoff_stalled", severity="high",
                        subject_type="conversation", subject_id=conversation.pk,
                        evidence={"any": "thing"}, raised_at=timezone.now())
    assert Flag.objects.filter(evidence__any="thing").count() == 1
