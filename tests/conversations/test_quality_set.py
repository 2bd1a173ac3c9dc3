"""The labelled answer-quality set (tests/fixtures/quality/, `make validate-quality`): its
shape, that cases go through the applier's decide layer, and that the held-out figures are
the ones docs/answer-quality.md states (measured; change both together)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from conversations.quality_set import (
    CHECKS,
    FIXTURES,
    CaseError,
    evaluate,
    load_cases,
    run_case,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "answer-quality.md"

# Held-out (tp, fp, fn) per check, as measured once by `make validate-quality` after the
# checks were frozen, and stated in docs/answer-quality.md ("Figures").
HELD_OUT = {
    "ungrounded_answer": (29, 6, 2),
    "weak_retrieval": (12, 0, 1),
    "tool_failure": (10, 0, 0),
    "guardrail_tripped": (9, 0, 0),
    "prompt_injection": (21, 1, 1),
    "injection_followed": (4, 0, 7),
    "ai_loop": (13, 0, 2),
    "excessive_agency": (9, 0, 0),
}


@pytest.fixture(scope="module")
def cases():
    return load_cases()


@pytest.fixture(scope="module")
def report(cases):
    return evaluate(cases)


def test_the_set_has_its_shape_and_split_counts(cases):
    assert len(cases) == 584
    languages = Counter(c["lang"] for c in cases)
    assert languages == {"en": 353, "es": 132, "fr": 49, "pt": 50}
    splits = Counter(c["split"] for c in cases)
    assert splits == {"tune": 382, "held_out": 202}
    held_out = [c for c in cases if c["split"] == "held_out"]
    assert Counter(c["lang"] for c in held_out) == {"en": 109, "es": 36, "fr": 28, "pt": 29}
    positives = Counter((c["split"], k) for c in cases for k in c["expect"])
    for check in CHECKS:  # every check has positives to measure in both splits
        assert positives[("tune", check)] >= 5, check
        assert positives[("held_out", check)] >= 8, check
    negatives = Counter(c["split"] for c in cases if not c["expect"])
    assert negatives["held_out"] >= 40  # near misses: cases that should raise nothing


def test_the_fresh_held_out_is_the_heldout2_files_and_nothing_else(cases):
    """The held-out cases were written after the first held-out had been read, and
    committed before the checks were tuned again: they are the heldout2_*.json files,
    and every older case is in the tune split."""
    for case in cases:
        fresh = case["file"].startswith("heldout2_")
        assert fresh == (case["split"] == "held_out") == case["id"].startswith("h2-"), case["id"]


def test_held_out_figures_are_the_ones_the_docs_state(report):
    held_out = report["held_out"]
    measured = {check: (s.tp, s.fp, s.fn) for check, s in held_out.items()}
    assert measured == HELD_OUT
    docs = DOCS.read_text(encoding="utf-8")
    for check, s in held_out.items():
        row = (rf"\| `{check}` \| {s.positives} \| {s.tp} \| {s.fp} \| {s.fn} \| "
               rf"{s.precision:.2f} \| {s.recall:.2f} \| {'PASS' if s.meets_target else 'MISS'}")
        assert re.search(row, docs), f"docs/answer-quality.md has no row for {check}: {row}"


def test_a_case_goes_through_turn_building_not_only_the_checks():
    """The second reply repeats the first after the customer answered: only the turn the
    decider builds (earlier replies, who wrote in between) makes it a loop."""
    case = {"id": "t-1", "lang": "en", "split": "tune", "conversation": [
        {"customer": "my parcel is late"},
        {"ai": "Sorry about that. Could you share your order number so I can check?"},
        {"customer": "It is 55120"},
        {"ai": "Sorry about that. Could you share your order number so I can check?"}],
        "expect": ["ai_loop"]}
    assert run_case(case) == {"ai_loop"}
    silent = {**case, "conversation": [case["conversation"][0], case["conversation"][1],
                                        case["conversation"][1]]}
    assert run_case(silent) == {"ai_loop"}  # the same reply twice in a row, near-identical
    reminder = {**case, "conversation": [
        {"customer": "my parcel is late"},
        {"ai": "Could you share your order number so I can check?"},
        {"ai": "Just checking in: could you share your order number when you have it?"}]}
    assert run_case(reminder) == set()  # asked again after silence: a reminder


def test_a_brand_allowed_tools_apply_to_the_case():
    case = {"id": "t-2", "lang": "en", "split": "tune", "rules": {"allowed_tools": ["get_order"]},
            "conversation": [
                {"customer": "refund order 1 please"},
                {"ai": "Refunded.", "steps": [{"tool": "create_refund", "result": {"ok": True}}]}],
            "expect": ["excessive_agency"]}
    assert run_case(case) == {"excessive_agency"}
    assert run_case({**case, "rules": {}}) == set()


@pytest.mark.parametrize("bad, message", [
    ({"id": "x", "lang": "en", "split": "train", "conversation": [], "expect": []}, "split"),
    ({"id": "x", "lang": "en", "split": "tune", "conversation": [], "expect": ["rude"]},
     "unknown kinds"),
    ({"lang": "en", "split": "tune", "conversation": [], "expect": []}, "id"),
])
def test_a_malformed_case_is_refused_with_its_file_named(tmp_path, bad, message):
    (tmp_path / "bad.json").write_text(json.dumps([bad]), encoding="utf-8")
    with pytest.raises(CaseError, match=message) as error:
        load_cases(tmp_path)
    assert "bad.json" in str(error.value)


def test_ids_are_unique_across_files(tmp_path):
    case = {"id": "dup", "lang": "en", "split": "tune", "conversation": [], "expect": []}
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps([case]), encoding="utf-8")
    with pytest.raises(CaseError, match="repeated"):
        load_cases(tmp_path)


def test_the_fixtures_directory_is_the_shipped_one():
    assert FIXTURES.is_dir() and len(list(FIXTURES.glob("*.json"))) >= 5
