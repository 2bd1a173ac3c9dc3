"""Property tests: whatever is posted at the Twilio webhooks, the answer and what is stored
stay within the contract Twilio and operators rely on.

- never a 5xx (an unhandled crash, where Twilio and operators expect an answer);
- every refusal (4xx) is JSON with "error" and "detail", and stores nothing;
- only a correctly signed request is accepted; an accepted request with a MessageSid is
  stored as exactly one raw event (processed, or failed with a reason and no partial rows),
  and a replay of it is answered alike and stores nothing new.

Each example runs in a savepoint that is rolled back, so examples do not see each other's
rows (and a database error in one example cannot poison the next).
"""

import base64
import string
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote_plus, urlencode

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from conversations.models import Conversation, Message, MessageStatusEvent, Participant, RawEvent
from tests.support.signing import twilio_fixture, twilio_signature
from tests.support.twilio import MESSAGES_PATH, OLD_TOKEN, STATUS_PATH, TOKEN

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"
PATHS = (MESSAGES_PATH, STATUS_PATH)
FIXTURES = (
    "inbound_sms",
    "inbound_whatsapp_media",
    "status_sms_delivered",
    "status_whatsapp_failed_63016",
    "status_whatsapp_read",
)
SID_KEYS = ("MessageSid", "SmsMessageSid", "SmsSid")
TWILIO_KEYS = (
    *SID_KEYS, "From", "To", "Body", "NumMedia", "NumSegments", "ProfileName", "WaId",
    "MessageStatus", "SmsStatus", "ErrorCode", "ErrorMessage", "MediaUrl0",
    "MediaContentType0", "MediaUrl1", "AccountSid", "ApiVersion", "MessageType",
)

PROPERTY_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
    database=None,  # no example database on disk: every run explores afresh
)

# --- strategies ----------------------------------------------------------------------------

twilio_sid = st.from_regex(r"\A(SM|MM)[0-9a-f]{32}\Z")
address = st.one_of(
    st.sampled_from(["+12125550147", "+14155550100", "whatsapp:+5215512345678",
                     "whatsapp:+14155238886", "WhatsApp:+1", "messenger:123", "rcs:+1", ":",
                     "whatsapp:", "", " "]),
    st.from_regex(r"\A(whatsapp:)?\+[0-9]{1,15}\Z"),
)
status_word = st.sampled_from(["queued", "sent", "delivered", "read", "failed", "undelivered",
                               "READ", " delivered ", "partially_delivered", "bogus", ""])
number_text = st.one_of(st.integers(-3, 12).map(str), st.sampled_from(["", "x", "1.5", "1e3",
                                                                        "100000"]))
# Full Unicode (hypothesis leaves out surrogates, which no HTTP client can send), incl. NUL.
any_text = st.text(max_size=40)
long_text = st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=3), st.integers(1, 400))
value = st.one_of(any_text, twilio_sid, address, status_word, number_text, long_text)
key = st.one_of(st.sampled_from(TWILIO_KEYS), any_text)
pair = st.tuples(key, value)

# Content types a form webhook might arrive with. Random ones use a plain alphabet: Django
# itself (not this app) raises while parsing some RFC 2231 `param*=` forms.
content_type = st.one_of(
    st.just(FORM), st.just(FORM), st.just(FORM), st.just(FORM),
    st.sampled_from([f"{FORM}; charset=utf-8", f"{FORM};charset=UTF-8",
                     FORM.upper(), f" {FORM} ; x=1", "application/json", "text/plain",
                     "text/xml",
                     "multipart/form-data; boundary=xyz", "multipart/form-data", "", "*/*",
                     "application/x-www-form-urlencoded-but-not"]),
    st.text(alphabet=string.ascii_letters + string.digits + "/-+.;= ", max_size=40).filter(
        lambda s: "charset" not in s.lower()  # the test client itself re-encodes for those
    ),
)
# For raw bytes: no charset parameter (the test client would transcode the body).
garbage_content_type = content_type.filter(lambda s: "charset" not in s.lower())
SIGNING = ("signed", "signed", "signed", "unsigned", "garbage_signature", "wrong_token",
           "tampered", "other_url", "empty_signature")


@st.composite
def form_payloads(draw) -> list[tuple[str, str]]:
    """Twilio-shaped payloads bent out of shape: fields dropped, changed, repeated, added."""
    base = draw(st.one_of(st.just({}), st.sampled_from(FIXTURES).map(twilio_fixture)))
    pairs = []
    for k, v in base.items():
        action = draw(st.integers(0, 19))
        if action == 0:
            continue  # dropped
        pairs.append((k, draw(value) if action == 1 else v))
    if draw(st.booleans()):
        pairs.append((draw(st.sampled_from(SID_KEYS)), draw(st.one_of(twilio_sid, value))))
    pairs += draw(st.lists(pair, max_size=8))
    if pairs and draw(st.integers(0, 4)) == 0:  # repeat some fields, maybe with other values
        for k, v in draw(st.lists(st.sampled_from(pairs), max_size=3)):
            pairs.append((k, draw(st.one_of(st.just(v), value))))
    return draw(st.permutations(pairs))


# --- helpers -------------------------------------------------------------------------------


def multi(pairs: list[tuple[str, str]]) -> MultiValueDict:
    """The POST parameters as Twilio's validator sees them (repeated keys sign every value)."""
    data = MultiValueDict()
    for k, v in pairs:
        data.appendlist(k, v)
    return data


@dataclass
class Request:
    path: str
    body: bytes
    content_type: str
    headers: dict[str, str]
    validly_signed: bool
    query: str = ""  # callback URLs may carry their own parameters; Twilio signs them too

    @property
    def url(self) -> str:
        return f"http://testserver{self.path}{self.query}"


def sign(path: str, params, mode: str, draw_signature: str,
         query: str = "") -> tuple[dict[str, str], bool]:
    url = f"http://testserver{path}{query}"
    if mode == "signed":
        return {"X-Twilio-Signature": twilio_signature(url, params, TOKEN)}, True
    if mode == "unsigned":
        return {}, False
    if mode == "empty_signature":
        return {"X-Twilio-Signature": ""}, False
    if mode == "garbage_signature":
        return {"X-Twilio-Signature": draw_signature}, False
    if mode == "wrong_token":
        return {"X-Twilio-Signature": twilio_signature(url, params, OLD_TOKEN)}, False
    if mode == "other_url":
        other = STATUS_PATH if path == MESSAGES_PATH else MESSAGES_PATH
        return {"X-Twilio-Signature": twilio_signature(f"http://testserver{other}{query}",
                                                       params, TOKEN)}, False
    raise AssertionError(mode)


def is_form(ctype: str, body: bytes) -> bool:
    # Django's test client sends no Content-Type at all with an empty body.
    return bool(body) and ctype.split(";")[0].strip().lower() == FORM


def post(client, request: Request):
    return client.post(request.path + request.query, request.body,
                       content_type=request.content_type, headers=request.headers)


def counts() -> dict[str, int]:
    return {
        "raw": RawEvent.objects.count(),
        "conversations": Conversation.objects.count(),
        "participants": Participant.objects.count(),
        "messages": Message.objects.count(),
        "statuses": MessageStatusEvent.objects.count(),
    }


@contextmanager
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def sent_params(body: bytes) -> QueryDict | None:
    """What the webhook parses from a UTF-8 form body, or None if it is not a readable form."""
    try:
        return QueryDict(body, encoding="utf-8")
    except Exception:  # noqa: BLE001 - too many fields: the webhook refuses such a body
        return None


def message_sid(params: QueryDict) -> str:
    return params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid") or ""


def looks_like_twilio(params: QueryDict, path: str) -> bool:
    """A request Twilio could really send: a real SID (and a status, for status callbacks)."""
    sid = message_sid(params)
    ok = len(sid) == 34 and sid[:2] in ("SM", "MM") and all(c in "0123456789abcdef"
                                                             for c in sid[2:])
    if path == STATUS_PATH:
        status = params.get("MessageStatus", "")
        ok = ok and bool(status) and len(status) < 64 and "\x00" not in status
    return ok


def check_contract(client, request: Request, *, expect_accepted: bool | None = None) -> int:
    """Post once and replay; assert the webhook contract. Returns the first status code."""
    before = counts()
    response = post(client, request)
    code = response.status_code
    assert code < 500, response.content[:500]
    if code >= 400:
        assert code in (400, 403, 413, 415), code
        assert response["Content-Type"] == "application/json", response["Content-Type"]
        payload = response.json()
        assert isinstance(payload.get("error"), str) and payload["error"]
        assert isinstance(payload.get("detail"), str) and payload["detail"]
        assert counts() == before, "a refused request stored something"
        assert expect_accepted is not True, payload
        event(f"{code} {payload['error']}")  # shown by --hypothesis-show-statistics
        return code

    assert code == 200
    assert request.validly_signed, "an unsigned or forged request was accepted"
    assert expect_accepted is not False
    if request.path == MESSAGES_PATH:
        assert response["Content-Type"].startswith("text/xml")
        assert response.content.decode().endswith("<Response/>")
    after = counts()
    assert after["raw"] == before["raw"] + 1
    raw = RawEvent.objects.order_by("-id").first()
    assert raw.provider == "twilio"
    assert raw.kind == ("message" if request.path == MESSAGES_PATH else "status")
    assert raw.body == request.body.decode("utf-8", errors="replace")
    assert raw.url == request.url
    assert raw.attempts == 1 and raw.processed_at is not None
    assert raw.status in (RawEvent.Status.PROCESSED, RawEvent.Status.FAILED)
    event(f"200 {raw.kind} {raw.status}")
    if raw.status == RawEvent.Status.FAILED:
        assert raw.error
        # A payload that cannot be applied leaves no partial rows behind.
        assert {k: v for k, v in after.items() if k != "raw"} == {
            k: v for k, v in before.items() if k != "raw"
        }
    elif raw.kind == "message":
        assert raw.messages.count() == 1
        assert after["messages"] == before["messages"] + 1
    else:
        assert raw.status_events.count() == 1
        assert after["statuses"] == before["statuses"] + 1

    # Twilio retries deliveries: a replay is answered alike and changes nothing.
    replay = post(client, request)
    assert replay.status_code == code
    assert replay.content == response.content
    assert counts() == after
    raw.refresh_from_db()
    assert raw.attempts == 1
    return code


# --- properties ----------------------------------------------------------------------------


def example_request(path: str, pairs: list[tuple[str, str]], query: str = ""):
    return example(path=path, pairs=pairs, mode="signed", ctype=FORM, query=query,
                   garbage_signature="x")


SMS = list(twilio_fixture("inbound_sms").items())
READ = list(twilio_fixture("status_whatsapp_read").items())


@settings(PROPERTY_SETTINGS, max_examples=400)
# Regressions found by this test: each answered 500 before the fix, or (NumMedia) built one
# media entry per unit of a number the request chose.
@example_request(MESSAGES_PATH, [*SMS, ("MessageSid", "SM" + "0" * 300)])
@example_request(MESSAGES_PATH, [*SMS, ("MessageSid", "SM\x00")])
@example_request(STATUS_PATH, [*READ, ("MessageStatus", "read" * 70)])
@example_request(STATUS_PATH, [*READ, ("MessageStatus", "re\x00ad")])
@example_request(STATUS_PATH, READ, query="?pad=" + "x" * 2100)
@example_request(MESSAGES_PATH, [*SMS, ("NumMedia", "100000")])
@given(
    path=st.sampled_from(PATHS),
    pairs=form_payloads(),
    mode=st.sampled_from(SIGNING),
    ctype=content_type,
    query=st.one_of(
        st.just(""), st.just(""), st.just(""),
        st.dictionaries(st.text(max_size=10), any_text, max_size=3).map(
            lambda q: "?" + urlencode(q) if q else ""),
        st.integers(2000, 2100).map(lambda n: "?pad=" + "x" * n),
    ),
    garbage_signature=st.one_of(
        st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=1, max_size=40),
        st.binary(min_size=20, max_size=20).map(lambda b: base64.b64encode(b).decode()),
    ),
)
def test_any_form_payload_keeps_the_webhook_contract(
    client, path, pairs, mode, ctype, query, garbage_signature
):
    body = urlencode(pairs).encode()
    if mode == "tampered":
        headers, _ = sign(path, multi(pairs), "signed", garbage_signature, query)
        tampered = [*pairs, ("Body", "tampered after signing")]
        body, signed = urlencode(tampered).encode(), False
    else:
        headers, signed = sign(path, multi(pairs), mode, garbage_signature, query)
    form = is_form(ctype, body)
    request = Request(path, body, ctype, headers, validly_signed=signed and form, query=query)

    params = sent_params(body)
    expect = None
    if not request.validly_signed:
        expect = False
    elif params is not None and looks_like_twilio(params, path) and len(request.url) < 1000:
        expect = True  # everything Twilio can really send is accepted
    with rolled_back():
        code = check_contract(client, request, expect_accepted=expect)
    if mode == "unsigned" or mode == "empty_signature":
        assert code == 403
    elif not form:
        assert code == 415
    elif not signed:
        assert code == 403


@settings(PROPERTY_SETTINGS, max_examples=300)
@given(
    path=st.sampled_from(PATHS),
    body=st.tuples(
        st.sampled_from([b"", b"", b"MessageSid=SM", b"MessageSid=SM1&MessageStatus=",
                         b"MessageSid=SM1&From=%2B1&To=%2B2&Body=", b"SmsSid=&MessageSid="]),
        st.one_of(
            st.binary(max_size=200),
            st.lists(
                st.sampled_from([b"&", b"=", b"%", b"%0", b"%00", b"%FF", b"%C3", b"+", b"\xff",
                                 b"\xc3\xa9", b"\x00", b";", b"MessageSid", b"SmsSid", b"SM1",
                                 b"MessageStatus", b"read", b"From", b"To", b"whatsapp%3A%2B1",
                                 b"%2B1", b"NumMedia", b"9"]),
                max_size=30,
            ).map(b"".join),
        ),
        st.sampled_from([b"", b"", b"&MessageSid=SM2&MessageStatus=sent&From=%2B1&To=%2B2",
                         b"&MessageStatus=%FF%FE", b"&From=whatsapp%3A%2B1&To=%2B2"]),
    ).map(b"".join),
    mode=st.sampled_from(("signed_as_parsed", "signed_as_parsed", "unsigned",
                          "garbage_signature")),
    ctype=garbage_content_type,
)
def test_raw_garbage_bodies_keep_the_webhook_contract(client, path, body, mode, ctype):
    """Bytes that are not a well-formed UTF-8 form. The signed variant signs exactly what the
    webhook parses from them, so garbage also reaches the storage path."""
    form = is_form(ctype, body)
    headers: dict[str, str] = {}
    signed = False
    if mode == "signed_as_parsed":
        params = sent_params(body)
        if params is not None:
            url = f"http://testserver{path}"
            headers = {"X-Twilio-Signature": twilio_signature(url, params, TOKEN)}
            signed = True
        else:
            headers = {"X-Twilio-Signature": "too-many-fields"}
    elif mode == "garbage_signature":
        headers = {"X-Twilio-Signature": base64.b64encode(body[:20] or b"x").decode()}
    request = Request(path, body, ctype, headers, validly_signed=signed and form)
    with rolled_back():
        code = check_contract(client, request,
                              expect_accepted=None if request.validly_signed else False)
    if b"\x00" in body:
        assert code == 400
    elif not headers:
        assert code == 403


@settings(PROPERTY_SETTINGS, max_examples=12)
@given(
    path=st.sampled_from(PATHS),
    field=st.sampled_from(["Body", "ProfileName", "From", "MessageSid", "ErrorMessage",
                           "MessageStatus", "SomeNewTwilioField"]),
    char=st.sampled_from(["a", "é", "😀", "&", "\x00"]),
    size=st.sampled_from([10_000, 500_000, 2_500_000, 2_700_000]),
    fixture=st.sampled_from(FIXTURES),
)
def test_huge_values_are_stored_or_refused_never_crash(client, path, field, char, size,
                                                       fixture):
    params = {**twilio_fixture(fixture), field: char * (size // len(quote_plus(char)))}
    body = urlencode(params).encode()
    url = f"http://testserver{path}"
    headers = {"X-Twilio-Signature": twilio_signature(url, params, TOKEN)}
    request = Request(path, body, FORM, headers, validly_signed=True)
    with rolled_back():
        code = check_contract(client, request)
    if len(body) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        assert code == 400
    elif field in ("Body", "SomeNewTwilioField", "ErrorMessage") and (
        path == MESSAGES_PATH or fixture.startswith("status")
    ):
        assert code == 200  # a long message or unknown field is data, not an attack


def test_too_large_refusal_names_the_reason(client):
    params = {**twilio_fixture("inbound_sms"), "Body": "x" * 3_000_000}
    url = f"http://testserver{MESSAGES_PATH}"
    response = client.post(MESSAGES_PATH, urlencode(params), content_type=FORM,
                           headers={"X-Twilio-Signature": twilio_signature(url, params, TOKEN)})
    assert response.status_code == 400
    assert response.json()["error"] == "too_large"
    assert RawEvent.objects.count() == 0


def test_absurd_media_count_is_kept_as_failed_not_expanded(twilio):
    """NumMedia drives a loop: a signed request saying 10^14 must not build 10^14 entries
    (5000 here, so a regression fails fast instead of exhausting memory)."""
    response = twilio.message({**twilio_fixture("inbound_sms"), "NumMedia": "5000"})
    assert response.status_code == 200
    raw = RawEvent.objects.get()
    assert raw.status == RawEvent.Status.FAILED
    assert "NumMedia" in raw.error
    assert Message.objects.count() == 0


def test_overlong_message_sid_is_refused_with_json_not_a_500(twilio):
    params = {**twilio_fixture("inbound_sms"), "MessageSid": "SM" + "0" * 300}
    response = twilio.message(params)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert "dedupe_key" in response.json()["detail"]
    assert RawEvent.objects.count() == 0
