"""`seed_demo` creates the demo alert rules and a history of alerts over its journeys."""

from io import StringIO

import pytest
from django.core.management import call_command

from alerts.models import Alert, AlertEvent, Rule
from demo.alerts import DEMO_RULES

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_rules_and_a_history_of_alerts():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert Rule.objects.count() == len(DEMO_RULES)
    assert f"alerts: {len(DEMO_RULES)} rules" in out.getvalue()
    dropped = Alert.objects.filter(rule__name="Dropped handoffs")
    assert dropped.exists()  # the demo journeys drop handoffs on several channels
    assert dropped.filter(state="firing").count() >= 1
    assert AlertEvent.objects.filter(kind="acknowledged", by="demo").exists()
    assert all(a.conversation_ids for a in Alert.objects.all())
    before = Alert.objects.count()
    call_command("seed_demo", stdout=StringIO())
    assert Rule.objects.count() == len(DEMO_RULES) and Alert.objects.count() == before
