"""The inbox, the replay and flag actions, per role: who sees what, masking, filters kept in
the URL, keyset pagination, CSRF, and constant query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.masking import mask_address, mask_text
from conversations.models import Conversation, Flag
from conversations.services import flag_raise
from demo.scenarios import scenario_get
from tests.support.roles import user_in
from tests.support.scenarios import play

pytestmark = pytest.mark.django_db


@pytest.fixture
def stories(client, settings):
    """A few conversations with handoffs and flags, through the real webhook."""
    for key in ("whatsapp-window-expired", "sms-ai-kept-talking", "web-on-time",
                "web-missed-request"):
        play(client, settings, scenario_get(key))
    client.logout()
    return {c.customer_address: c for c in Conversation.objects.all()}


def test_signed_out_people_are_sent_to_sign_in(client):
    for path in ("/", "/conversations/1/", "/conversations/1/raw/"):
        response = client.get(path)
        assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_a_user_without_a_role_is_refused(as_role):
    response = as_role(None).get("/")
    assert response.status_code == 403
    assert b"Not allowed" in response.content


def test_each_role_sees_the_inbox_and_viewers_see_masked_contacts(stories, as_role):
    whatsapp = next(c for c in stories.values() if c.channel == "whatsapp")
    for role in ("manager", "qa_reviewer"):
        page = as_role(role).get("/inbox/").content.decode()
        assert whatsapp.customer_address in page
    page = as_role("viewer").get("/inbox/").content.decode()
    assert whatsapp.customer_address not in page
    assert mask_address(whatsapp.customer_address) in page
    assert "contact details masked" in page


def test_the_replay_masks_pii_in_bodies_for_viewers(stories, as_role):
    conversation = next(iter(stories.values()))
    from conversations.models import Message

    Message.objects.filter(conversation=conversation).update(
        body="Call me on +44 7911 123456 or mail jane.doe@example.com")
    viewer = as_role("viewer").get(f"/conversations/{conversation.pk}/").content.decode()
    assert "7911 123456" not in viewer and "jane.doe@example.com" not in viewer
    assert "j•••@example.com" in viewer
    manager = as_role("manager").get(f"/conversations/{conversation.pk}/").content.decode()
    assert "+44 7911 123456" in manager and "jane.doe@example.com" in manager


def test_masking_rules():
    assert mask_address("+447911123456") == "+••••••••3456"
    assert mask_address("priya@customer.example") == "p•••@customer.example"
    assert mask_address("visitor-3f1a") == "•••••••-••1a"
    assert mask_text("card 4111 1111 1111 1111 ok") == "card •••• •••• •••• 1111 ok"
    iban = "ES91 2100 0418 4502 0005 1332"
    assert mask_text(f"IBAN {iban}") == "IBAN •••• •••• •••• •••• •••• 1332"
    assert mask_text("order #5521 at 10:30") == "order #5521 at 10:30"  # not PII


def test_filters_live_in_the_url_and_narrow_the_inbox(stories, as_role):
    manager = as_role("manager")
    page = manager.get("/inbox/?channel=sms").content.decode()
    assert page.count('data-conversation="') == 1
    page = manager.get("/inbox/?flag_kind=handoff_missed").content.decode()
    missed = next(c for c in stories.values() if c.channel == "web" and c.flags.filter(
        kind="handoff_missed").exists())
    assert f'data-conversation="{missed.pk}"' in page and page.count('data-conversation="') == 1
    page = manager.get("/inbox/?handoff_state=resolved&q=parcel").content.decode()
    assert page.count('data-conversation="') == 1
    # The form shows the filters it applied, so the URL is the view.
    assert '<option value="resolved" selected>' in page
    assert 'value="parcel"' in page


def test_bad_filters_get_a_clear_400_never_a_500(stories, as_role):
    manager = as_role("manager")
    response = manager.get("/inbox/?since=not-a-date&channel=fax")
    assert response.status_code == 400
    assert b"were not understood" in response.content
    assert manager.get("/inbox/?until=9999-12-31&since=0001-01-01").status_code == 200
    response = manager.get("/inbox/?after=%%%garbage")
    assert response.status_code == 400
    assert b"page link is not valid" in response.content


def test_severity_sort_and_keyset_pages_walk_everything_once(as_role):
    now = timezone.now()
    for i in range(23):
        conversation = Conversation.objects.create(
            channel="sms", business_address="+14155550100", customer_address=f"+1212555{i:04d}",
            started_at=now, last_activity_at=now - timedelta(minutes=i % 5))
        if i % 4 == 0:
            flag_raise(conversation=conversation, kind="handoff_stalled",
                       severity="high" if i % 8 == 0 else "medium",
                       subject_type="conversation", subject_id=conversation.pk, evidence={"i": i})
    manager = as_role("manager")
    from audit.inbox_filters import InboxFilters
    from audit.selectors import inbox_page

    for sort in ("recent", "severity"):
        seen, cursor = [], ""
        while True:
            page = inbox_page(filters=InboxFilters(), sort=sort, cursor=cursor, size=5)
            seen += [r.conversation.pk for r in page.rows]
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) == 23
        if sort == "severity":
            ranks = list(Conversation.objects.filter(pk__in=seen[:6]).values_list(
                "open_flag_rank", flat=True))
            assert sorted(ranks, reverse=True)[:3] == [4, 4, 4]
            assert [Conversation.objects.get(pk=p).open_flag_rank for p in seen[:3]] == [4, 4, 4]
    # Through the page: the next link carries the cursor and the sort.
    response = manager.get("/inbox/?sort=severity")
    assert 'rel="next"' not in response.content.decode()  # 23 < one page of 50


def test_page_queries_do_not_grow_with_the_page(stories, as_role):
    manager = as_role("manager")
    manager.get("/inbox/")  # warm the session and permission caches
    with CaptureQueriesContext(connection) as small:
        manager.get("/inbox/?channel=sms")
    with CaptureQueriesContext(connection) as large:
        manager.get("/inbox/")
    assert len(large) == len(small)


def test_flag_actions_are_for_managers_with_csrf_and_record_who(stories, as_role):
    flag = Flag.objects.filter(status="open").first()
    url = f"/flags/{flag.pk}/status/"
    assert as_role("viewer").post(url, {"status": "acknowledged"}).status_code == 403
    assert as_role("qa_reviewer").post(url, {"status": "acknowledged"}).status_code == 403
    manager = user_in("manager", "user-manager")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(manager)
    assert strict.post(url, {"status": "acknowledged"}).status_code == 403  # no CSRF token
    replay = strict.get(f"/conversations/{flag.conversation_id}/")
    token = replay.cookies["csrftoken"].value
    response = strict.post(url, {"status": "acknowledged", "note": "looking into it",
                                 "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    flag.refresh_from_db()
    assert (flag.status, flag.status_changed_by, flag.note) == (
        "acknowledged", "user-manager", "looking into it")
    assert flag.status_changed_at is not None
    response = strict.post(url, {"status": "nonsense", "csrfmiddlewaretoken": token})
    assert response.status_code == 400


def test_resolving_flags_moves_the_conversation_down_the_severity_sort(stories):
    from conversations.services import flag_set_status

    conversation = Conversation.objects.filter(open_flag_rank__gt=0).first()
    assert conversation.open_flag_rank == 4  # a high flag is open
    for flag in conversation.flags.all():
        flag_set_status(flag=flag, status="resolved", by="t")
    conversation.refresh_from_db()
    assert conversation.open_flag_rank == 0


def test_raw_events_are_one_click_away_for_managers_only(stories, as_role):
    conversation = next(iter(stories.values()))
    assert as_role("viewer").get(f"/conversations/{conversation.pk}/raw/").status_code == 403
    page = as_role("manager").get(f"/conversations/{conversation.pk}/raw/")
    assert page.status_code == 200 and b"events" in page.content
    replay = as_role("manager").get(f"/conversations/{conversation.pk}/").content.decode()
    assert f"/conversations/{conversation.pk}/raw/" in replay
    replay = as_role("viewer").get(f"/conversations/{conversation.pk}/").content.decode()
    assert f"/conversations/{conversation.pk}/raw/" not in replay


def test_tone_scores_show_in_the_inbox_and_the_replay_and_brands_filter(stories, as_role):
    from conversations.models import Message
    from scoring.models import Score
    from scoring.services import brand_voice_default, messages_score

    messages_score(message_ids=list(Message.objects.values_list("pk", flat=True)))
    sms = next(c for c in stories.values() if c.channel == "sms")
    latest = Score.objects.filter(conversation=sms, name="brand_tone").order_by(
        "-occurred_at", "-id").first()
    assert latest is not None
    manager = as_role("manager")
    page = manager.get("/inbox/?channel=sms").content.decode()
    assert f'title="brand tone of the latest scored message, 0-100">{round(latest.value * 100)}<' \
        in page
    replay = manager.get(f"/conversations/{sms.pk}/").content.decode()
    assert "brand tone <strong" in replay and "formality" in replay
    brand = brand_voice_default()
    assert manager.get(f"/inbox/?brand={brand.name}").content.decode().count(
        'data-conversation="') == len(stories)
    assert manager.get("/inbox/?brand=no-such-brand").content.decode().count(
        'data-conversation="') == 0


FIELDS = ["channel", "flag_kind", "flag_status", "handoff_state", "agent", "model",
          "prompt_version", "brand", "since", "until", "q", "sort", "after"]


def test_no_inbox_query_string_makes_a_500(as_role):
    """Whatever the query string, the inbox answers 200 or a clear 400."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    manager = as_role("manager")
    values = st.one_of(st.text(max_size=30), st.dates().map(str),
                       st.sampled_from(["sms", "web", "severity", "recent", "open", "queued"]))

    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.dictionaries(st.sampled_from(FIELDS), values, max_size=6))
    def check(params):
        response = manager.get("/inbox/", params)
        assert response.status_code in (200, 400), (params, response.status_code)

    check()
