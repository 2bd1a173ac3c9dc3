"""Issue 13, item 3: masking finds what the pii_leak check finds (scoring.pii), including
non-ASCII local parts, internationalized domains and numbers with extensions."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.masking import mask_address, mask_text
from scoring.checks import CheckInput, pii_leak_check
from scoring.pii import pii_spans

FORMS = [
    # (text, what must not survive masking)
    ("Escríbame a josé.garcía@correo.es por favor", ["josé", "garcía"]),
    ("mail zoe@exämple.de today", ["zoe@"]),
    ("mail zoë.müller@bücher.example please", ["zoë", "müller"]),
    ("call 4155550199ext now", ["415555"]),
    ("call +1-415-555-0142ext12 now", ["415-555", "ext12"]),
    ("call +1 415 555 0142 ext. 12", ["415 555", "ext. 12"]),
    ("Call me on +44 7911 123456 or mail jane.doe@example.com", ["7911 12", "jane.doe"]),
    ("card 4111 1111 1111 1111 ok", ["4111 1111"]),
]


@pytest.mark.parametrize(("text", "hidden"), FORMS)
def test_masking_covers_the_forms_the_probe_found(text, hidden):
    masked = mask_text(text)
    for part in hidden:
        assert part not in masked, masked
    assert "•" in masked


@pytest.mark.parametrize(("text", "hidden"), FORMS)
def test_masking_and_detection_agree(text, hidden):
    finding = pii_leak_check(CheckInput(text=text, channel="sms"))
    assert finding is not None, text
    masked = mask_text(text)
    assert pii_leak_check(CheckInput(text=masked, channel="sms")) is None, masked


def test_masked_addresses_keep_only_a_hint():
    assert mask_address("josé.garcía@correo.es") == "j•••@correo.es"
    assert mask_address("zoe@exämple.de") == "z•••@exämple.de"


def test_not_pii_is_left_alone():
    for text in ("order #5521 at 10:30", "Mon 05 Jan 12:30:00", "2026-01-05T12:30:00+00:00",
                 "550 5.1.1 Recipient rejected", "12 items, 3 left"):
        assert mask_text(text) == text


_local = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzéíóüøñ"), min_size=1, max_size=10)
_domain = st.sampled_from(["example.com", "exämple.de", "correo.es", "xn--exmple-cua.de"])
_number = st.sampled_from(["+1 415 555 0142", "4155550199", "(415) 555-0199",
                           "+44 7911 123456", "+1-415-555-0142ext12", "4155550199x9"])
_filler = st.text(st.sampled_from("abc ,.!?\n"), max_size=20)


@settings(max_examples=150, deadline=None)
@given(before=_filler, local=_local, domain=_domain, number=_number, after=_filler)
def test_nothing_the_check_detects_survives_masking(before, local, domain, number, after):
    text = f"{before} {local}@{domain} {number} {after}"
    assert {s.rule for s in pii_spans(text)} >= {"email_address", "phone_number"}
    masked = mask_text(text)
    assert pii_spans(masked) == []
    assert f"{local}@" not in masked or len(local) == 1
