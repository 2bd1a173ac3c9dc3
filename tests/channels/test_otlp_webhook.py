"""POST /hooks/otlp/v1/traces through Django's test client: the OTLP answers (partial
success, 400, 401, 413, 415, 503 + Retry-After), what is stored per span, and how spans
find their conversation."""

import gzip
import json

import pytest

from channels.otlp import OTLPTracesView
from channels.tokens import otlp_token_issue
from conversations.models import AIStep, Conversation, RawEvent
from tests.support.dbtrouble import raw_events_locked
from tests.support.otlp import answer, export, post, span

pytestmark = pytest.mark.django_db

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}


@pytest.fixture
def token():
    return otlp_token_issue(sender="agent")


def test_invalid_spans_are_rejected_and_counted_the_rest_stored(client, token):
    body = export(
        span(1, 1, "root", {**CHAT, "gen_ai.conversation.id": "c-1"}),
        span(0, 2, "no trace id", CHAT),
        span(1, 0, "no span id", CHAT),
    ).SerializeToString()
    response = post(client, body, token)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    partial = answer(response).partial_success
    assert partial.rejected_spans == 2
    assert "no trace id" in partial.error_message and "no span id" in partial.error_message
    raw = RawEvent.objects.get(provider="otlp")
    assert raw.dedupe_key == f"span:{1:032x}:{1:016x}"
    assert raw.headers["sender"] == "agent"
    assert set(AIStep.objects.get().conversation.keys.values_list("key", flat=True)) == {
        "events:c-1", f"trace:{1:032x}"}


def test_undecodable_bodies_get_400_and_store_nothing(client, token):
    cases = [
        (b"\x0a\xff\xff\xff", "application/x-protobuf", False),
        (b"{not json", "application/json", False),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
         "application/json", False),
        (b'{"resourceSpans": "nope"}', "application/json", False),
        (b"\x1f\x8b\x08\x00 this is not gzip", "application/x-protobuf", None),
    ]
    for body, content_type, zipped in cases:
        headers = {"Content-Encoding": "gzip"} if zipped is None else {}
        response = post(client, body, token, content_type=content_type,
                        gzip_body=bool(zipped), **headers)
        assert response.status_code == 400, (body, response.content)
        assert response.json()["error"] == "undecodable"
    assert not RawEvent.objects.exists()


def test_over_the_size_limit_is_413_before_and_after_gzip(client, token, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "OTLP_MAX_BODY_BYTES": 2000}
    big = export(*[span(1, i, "s", {**CHAT, "gen_ai.conversation.id": "c"})
                   for i in range(1, 60)]).SerializeToString()
    assert len(big) > 2000 and len(gzip.compress(big)) < 2000
    assert post(client, big, token).status_code == 413
    zipped = post(client, big, token, gzip_body=True)
    assert zipped.status_code == 413 and zipped.json()["error"] == "too_large"
    bomb = gzip.compress(b"\0" * 200_000)  # ~200 bytes that unzip past the limit
    assert len(bomb) < 2000
    assert post(client, bomb, token, **{"Content-Encoding": "gzip"}).status_code == 413
    assert not RawEvent.objects.exists()


def test_other_media_types_and_encodings_are_415(client, token):
    assert post(client, b"x", token, content_type="text/plain").status_code == 415
    response = post(client, export().SerializeToString(), token,
                    **{"Content-Encoding": "br"})
    assert response.status_code == 415


def test_no_or_unknown_token_is_401(client, token):
    body = export(span(1, 1, "s", CHAT)).SerializeToString()
    assert client.post("/hooks/otlp/v1/traces", body,
                       content_type="application/x-protobuf").status_code == 401
    assert post(client, body, token + "x").status_code == 401
    assert post(client, body, token).status_code == 200


def test_an_empty_export_is_answered_and_stores_nothing(client, token):
    response = post(client, export().SerializeToString(), token)
    assert response.status_code == 200 and not answer(response).HasField("partial_success")
    json_answer = post(client, b"{}", token, content_type="application/json")
    assert json_answer.status_code == 200 and json_answer.json() == {}
    assert not RawEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_storage_trouble_is_503_with_retry_after(client, token):
    body = export(span(1, 1, "s", {**CHAT, "gen_ai.conversation.id": "c"})).SerializeToString()
    with raw_events_locked():
        response = post(client, body, token)
    assert response.status_code == 503 and response["Retry-After"]
    assert not RawEvent.objects.exists()
    assert post(client, body, token).status_code == 200  # the exporter's retry
    assert RawEvent.objects.count() == 1


def test_spans_that_are_not_ai_are_kept_raw_only(client, token):
    body = export(span(1, 1, "GET /orders", {"http.request.method": "GET",
                                             "gen_ai.conversation.id": "c-2"})
                  ).SerializeToString()
    assert post(client, body, token).status_code == 200
    raw = RawEvent.objects.get()
    assert raw.status == "processed"
    assert json.loads(raw.body)["span"]["attributes"]["http.request.method"] == "GET"
    assert not AIStep.objects.exists()


def test_a_later_export_of_the_trace_joins_the_conversation_by_trace(client, token):
    root = span(7, 1, "invoke_agent", {"gen_ai.operation.name": "invoke_agent",
                                       "gen_ai.conversation.id": "c-3"})
    assert post(client, export(root).SerializeToString(), token).status_code == 200
    child = span(7, 2, "chat", CHAT, parent=1)
    assert post(client, export(child).SerializeToString(), token).status_code == 200
    conversation = Conversation.objects.get(keys__key="events:c-3")
    assert conversation.ai_steps.count() == 2
    assert conversation.keys.filter(key=f"trace:{7:032x}").exists()


def test_a_span_that_names_no_conversation_fails_with_a_reason_and_is_kept(client, token):
    body = export(span(8, 1, "chat", CHAT)).SerializeToString()
    assert post(client, body, token).status_code == 200
    raw = RawEvent.objects.get()
    assert raw.status == "failed" and "names no conversation" in raw.error
    assert not AIStep.objects.exists()


def test_the_channel_comes_from_an_attribute_and_a_bad_one_fails_the_span(client, token):
    body = export(
        span(9, 1, "chat", {**CHAT, "gen_ai.conversation.id": "wa-1"}),
        resource={"handoff_auditor.channel": "whatsapp"}).SerializeToString()
    post(client, body, token)
    assert Conversation.objects.get(keys__key="events:wa-1").channel == "whatsapp"
    body = export(span(10, 1, "chat", {**CHAT, "gen_ai.conversation.id": "x-1",
                                       "handoff_auditor.channel": "pigeon"})).SerializeToString()
    post(client, body, token)
    failed = RawEvent.objects.get(dedupe_key__startswith=f"span:{10:032x}")
    assert failed.status == "failed" and "pigeon" in failed.error


def test_the_normalizer_reads_only_the_stored_raw_event(client, token):
    body = export(span(11, 1, "chat", {**CHAT, "gen_ai.conversation.id": "c-11"})
                  ).SerializeToString()
    post(client, body, token)
    raw = RawEvent.objects.get()
    [step] = OTLPTracesView.normalize(raw)
    assert step.external_id == f"otlp:{11:032x}:{1:016x}"
    assert step.fields["input_tokens"] == 10
