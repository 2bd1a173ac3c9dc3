"""How a Twilio webhook's form body is read and its signature checked: as Django would read
`request.POST`, and accepting what the twilio package's RequestValidator accepts."""

from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from twilio.request_validator import RequestValidator

from channels.base import form_fields
from conversations.applier import raw_events_apply
from conversations.models import Message, RawEvent
from tests.support.signing import twilio_fixture, twilio_signature
from tests.support.twilio import MESSAGES_PATH, TOKEN

BODIES = [
    b"",
    b"Body=hello+world&NumMedia=0",
    b"Body=&Empty&To=%2B14155238886",  # blank values and a field with no "="
    b"MediaUrl=a&MediaUrl=b&MediaUrl=a",  # a repeated field keeps every value, in order
    b"Body=caf%C3%A9+%F0%9F%99%8F&X=%E9",  # UTF-8 escapes; an undecodable escape replaced
    b"Body=%ZZ%&&=lonely&a=1;b=2",  # broken escapes, an empty name, a semicolon
    "Body=déjà vu".encode("latin-1"),  # raw bytes that are not UTF-8: read as Latin-1
    "Body=日本語 & more".encode(),
]


@pytest.mark.parametrize("body", BODIES)
def test_a_form_body_is_read_as_django_reads_request_post(body):
    expected = QueryDict(body)
    fields = form_fields(body)
    assert {k: fields.getlist(k) for k in fields} == {k: expected.getlist(k) for k in expected}
    assert list(fields) == list(expected)


def test_more_fields_than_django_allows_is_refused(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    with pytest.raises(ValueError):
        form_fields(b"a=1&b=2&c=3&d=4")
    assert form_fields(b"a=1&b=2&c=3").getlist("c") == ["3"]


@pytest.mark.django_db
@pytest.mark.parametrize("signed_as", [
    "https://auditor.example.com:443{path}",  # Twilio signed with the default port
    "https://auditor.example.com{path}",  # and without it
])
def test_twilio_signatures_with_and_without_the_default_port_are_accepted(
        client, settings, signed_as):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "PUBLIC_BASE_URL": "https://auditor.example.com"}
    params = twilio_fixture("inbound_sms")
    signature = twilio_signature(signed_as.format(path=MESSAGES_PATH), params, TOKEN)
    response = client.post(MESSAGES_PATH, urlencode(params),
                           content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    assert RawEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_signature_over_another_port_or_host_is_refused(client, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "PUBLIC_BASE_URL": "https://auditor.example.com"}
    params = twilio_fixture("inbound_sms")
    for url in (f"https://auditor.example.com:8443{MESSAGES_PATH}",
                f"https://other.example.com{MESSAGES_PATH}"):
        response = client.post(MESSAGES_PATH, urlencode(params),
                               content_type="application/x-www-form-urlencoded",
                               headers={"X-Twilio-Signature": twilio_signature(url, params,
                                                                               TOKEN)})
        assert response.status_code == 403
    assert RawEvent.objects.count() == 0


@pytest.mark.django_db
def test_repeated_fields_are_signed_and_stored_as_twilio_sends_them(client):
    """Twilio signs every value of a repeated field; the message keeps the last, as before."""
    body = urlencode([*twilio_fixture("inbound_sms").items(), ("Tag", "b"), ("Tag", "a")])
    params = QueryDict(body)
    signature = RequestValidator(TOKEN).compute_signature(
        f"http://testserver{MESSAGES_PATH}", params)
    response = client.post(MESSAGES_PATH, body,
                           content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    raw_events_apply()
    assert Message.objects.get().metadata["Tag"] == "a"
