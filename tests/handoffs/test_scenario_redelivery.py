"""Redelivery changes nothing: every scenario of the library, played once and then again
under new webhook ids (a sender that lost our answers and sends everything again), leaves
the same handoffs, log, waits, asks and flags."""


import pytest

from conversations.models import Flag, Message, RawEvent
from demo.scenarios import SCENARIOS, scenario_get, scenario_verify
from handoffs.models import Handoff, HandoffTransition, HumanAsk, Wait
from tests.support.scenarios import play


def derived_rows() -> dict[str, list[tuple]]:
    return {
        model.__name__: list(model.objects.order_by("pk").values_list())
        for model in (Handoff, HandoffTransition, Wait, HumanAsk, Flag, Message)
    }


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.key)
def test_a_scenario_delivered_twice_leaves_the_same_rows(client, settings, scenario):
    conversation, _ = play(client, settings, scenario)
    once = derived_rows()
    stored = RawEvent.objects.count()
    play(client, settings, scenario, again="again-")
    assert RawEvent.objects.count() == 2 * stored  # stored again: new ids ...
    assert derived_rows() == once  # ... and applied to no effect
    assert scenario_verify(scenario, conversation) == []


@pytest.mark.django_db
def test_a_resent_batch_opens_no_second_reply_wait(client, settings):
    """The case that found it: while a human is engaged, [customer +60 s, customer +70 s,
    human +410 s] sent again under a new webhook-id opened a second reply wait from the
    +70 s message and raised a second handoff_stalled flag (the library's scenario
    web-engaged-batch-resent plays it; this says it in rows)."""
    scenario = scenario_get("web-engaged-batch-resent")
    conversation, _ = play(client, settings, scenario)
    assert scenario_verify(scenario, conversation) == []
    assert list(Flag.objects.filter(kind="handoff_stalled").values_list("status", flat=True)) \
        == ["resolved"]
    assert Wait.objects.filter(kind="reply").count() == 1
    assert RawEvent.objects.count() == 2 * 3 + 4  # the batch's three events stored twice

