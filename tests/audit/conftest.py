"""Fixtures the audit tests share: a signed-in Client per role, the headless browser."""

import pytest

from audit.rollups import rollups_refresh
from conversations.models import Conversation, Message
from scoring.services import messages_score
from tests.audit.outcome_data import TODAY, deliver, late_events, week_events
from tests.support.browser import browser  # noqa: F401 (a fixture)
from tests.support.events import SECRET
from tests.support.roles import as_role  # noqa: F401 (a fixture)


@pytest.fixture
def week(client, settings, time_machine):
    """The hand-worked week (tests/audit/outcome_data.py) applied, scored and rolled up;
    the clock on its last day. Conversations by their external id."""
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}
    deliver(client, week_events() + late_events(), "pages-week")
    messages_score(message_ids=list(Message.objects.values_list("pk", flat=True)))
    rollups_refresh()
    rollups_refresh()
    time_machine.move_to(f"{TODAY.isoformat()}T12:00:00Z", tick=False)
    return {c.keys.get().key.split(":", 1)[1]: c for c in Conversation.objects.all()}
