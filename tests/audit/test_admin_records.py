"""The admin speaks people's names for models, and raw and audit records are read-only in
it (viewed, never added, changed or deleted by hand)."""

import pytest

from conversations.models import RawEvent
from demo.scenarios import scenario_get
from tests.support.scenarios import play

pytestmark = pytest.mark.django_db

READ_ONLY = ["conversations/rawevent", "conversations/message", "conversations/flag",
             "conversations/aistep", "conversations/conversationevent",
             "conversations/messagestatusevent", "conversations/conversation",
             "handoffs/handoff", "handoffs/humanask", "scoring/score", "scoring/scoredaily"]


def test_verbose_names_on_the_admin_index(admin_client):
    page = admin_client.get("/admin/").content.decode()
    for name in ("AI steps", "Daily scores", "Customer asks for a human", "SLA policies"):
        assert f">{name}<" in page, name
    assert "Ai steps" not in page and "Score dailys" not in page


def test_raw_and_audit_records_are_read_only(admin_client, client, settings):
    play(client, settings, scenario_get("web-late-queue"))
    for model in READ_ONLY:
        listing = admin_client.get(f"/admin/{model}/")
        assert listing.status_code == 200, model
        assert f"/admin/{model}/add/" not in listing.content.decode(), model
        assert admin_client.get(f"/admin/{model}/add/").status_code == 403, model
    raw = RawEvent.objects.first()
    page = admin_client.get(f"/admin/conversations/rawevent/{raw.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(f"/admin/conversations/rawevent/{raw.pk}/change/",
                             {"status": "failed"}).status_code == 403
    assert admin_client.post(f"/admin/conversations/rawevent/{raw.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    assert RawEvent.objects.filter(pk=raw.pk).exists()
