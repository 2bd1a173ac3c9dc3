"""Issue 13, item 6: a flag another reviewer dismissed reads "open" to a blind reviewer, so
no status filter may tell it apart: not /api/flags/?status=, not the conversations'
flag_status (API, inbox, CSV). Once the reviewer has submitted their own review, the
filters say what the flag is."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission

from scoring.qa import scorecard_create
from tests.support.qa import CARD, client_of, conversation, flag, message, person, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def dismissed():
    card = scorecard_create(key="support", name="Support", categories=CARD, by="lead")
    alice, bob = person("alice"), person("bob")
    bob.user_permissions.add(Permission.objects.get(codename="export_data"))
    conv = conversation()
    message(conv)
    f = flag(conv, "pii_leak")
    submit(alice, conv, card, verdicts=[{"flag_id": f.pk, "verdict": "false_positive"}])
    f.refresh_from_db()
    assert f.status == "false_positive"
    return {"card": card, "bob": bob, "conv": conv, "flag": f}


def listed(client, status: str) -> dict[str, bool]:
    """Where the conversation / flag shows up when filtered by `status`."""
    d = client.dismissed
    flags = client.get("/api/flags/", {"status": status}).json()["results"]
    convs = client.get("/api/conversations/", {"flag_status": status}).json()["results"]
    inbox = client.get("/inbox/", {"flag_status": status})
    export = client.get("/export.csv", {"flag_status": status})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert inbox.status_code == export.status_code == 200
    return {
        "api flags": d["flag"].pk in [r["id"] for r in flags],
        "api conversations": d["conv"].pk in [r["conversation"]["id"] for r in convs],
        "inbox": f'data-conversation="{d["conv"].pk}"' in inbox.content.decode(),
        "csv": len(rows) == 1,
    }


def test_a_blind_reviewer_finds_a_dismissed_flag_only_as_open(dismissed):
    bob = client_of(dismissed["bob"])
    bob.dismissed = dismissed
    assert bob.get(f"/api/flags/{dismissed['flag'].pk}/").json()["status"] == "open"
    everywhere = {"api flags": True, "api conversations": True, "inbox": True, "csv": True}
    nowhere = dict.fromkeys(everywhere, False)
    assert listed(bob, "false_positive") == nowhere
    assert listed(bob, "open") == everywhere

    # Bob's own review done: he is no longer blind, and the filters say what it is.
    submit(dismissed["bob"], dismissed["conv"], dismissed["card"],
           verdicts=[{"flag_id": dismissed["flag"].pk, "verdict": "confirmed"}])
    assert listed(bob, "false_positive") == everywhere
    assert listed(bob, "open") == nowhere
