"""The labelled answer-quality set (tests/fixtures/quality/*.json, docs/answer-quality.md):
each case a short support conversation with the AI's steps and the flag kinds a reviewer
expects. A case is played through the decide layer the applier uses
(ingest_quality.QualityDecider: turn building, then the checks), not a copy of it, and
the kinds it raises are compared with the labels: precision and recall per check, per
split ("tune" cases may be read while tuning thresholds and lexicons, "held_out" ones not).

Case shape (hand-written JSON):
    {"id": "en-refund-003", "lang": "en", "split": "tune" | "held_out",
     "rules": {"allowed_tools": [...], "retrieval_min_score": 0.5, ...},   (optional)
     "conversation": [
        {"customer": "text"},
        {"ai": "text", "steps": [
            {"retrieval": [{"id", "score", "text"}], "query": "..."},
            {"tool": "name", "args": {...}, "result": {...}, "error": "...", "retries": 3,
             "approval": {"required": true, "status": "approved"}},
            {"guardrails": [{"name", "passed", "action", "message"}]},
            {"system_prompt": "..."}]},
        {"handoff": true}],
     "expect": ["ungrounded_answer", ...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .conf import auditor_settings
from .ingest_quality import QualityConfig, QualityDecider, quality_config
from .ingest_state import QualityContext
from .models import AuthorKind
from .quality.context import Rules

CHECKS = ("ungrounded_answer", "weak_retrieval", "tool_failure", "guardrail_tripped",
          "prompt_injection", "injection_followed", "ai_loop", "excessive_agency")
SPLITS = ("tune", "held_out")
TARGET_PRECISION = 0.9
TARGET_RECALL = 0.7
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "quality"
_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_CONVERSATION = 1


class CaseError(ValueError):
    """A case the loader cannot read (named by file and id)."""


def load_cases(directory: Path = FIXTURES) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in sorted(directory.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            where = f"{path.name}: {case.get('id')!r}"
            if not case.get("id") or case["id"] in seen:
                raise CaseError(f"{where}: missing or repeated id")
            if case.get("split") not in SPLITS or not case.get("lang"):
                raise CaseError(f"{where}: split must be one of {SPLITS}, lang set")
            unknown = set(case.get("expect", [])) - set(CHECKS)
            if unknown:
                raise CaseError(f"{where}: unknown kinds {sorted(unknown)}")
            seen.add(case["id"])
            cases.append({**case, "file": path.name})
    return cases


def _step_row(step: dict[str, Any], external_id: str, message: int,
              at: datetime) -> dict[str, Any]:
    """An AIStep row as ingest_quality_load hands it to the decider."""
    row: dict[str, Any] = {
        "external_id": external_id, "message_id": message, "message_provider": "",
        "message_provider_id": "", "occurred_at": at, "operation": "chat",
        "tool_name": "", "tool_error": "", "tool_result": None, "tool_retries": None,
        "tool_approval": None, "retrieved_documents": [], "retrieval_query": "",
        "guardrails": [], "finish_reason": "stop", "system_prompt": "", "input_messages": [],
        "trace_id": ""}
    if "retrieval" in step:
        row.update(operation="retrieval", retrieved_documents=step["retrieval"],
                   retrieval_query=step.get("query", ""))
    if "tool" in step:
        row.update(operation="execute_tool", tool_name=step["tool"],
                   tool_error=step.get("error", ""), tool_result=step.get("result"),
                   tool_retries=step.get("retries"), tool_approval=step.get("approval"))
    if "guardrails" in step:
        row["guardrails"] = step["guardrails"]
    if "system_prompt" in step:
        row["system_prompt"] = step["system_prompt"]
    return row


def run_case(case: dict[str, Any], rules: Rules | None = None) -> set[str]:
    """The flag kinds the decide layer raises on the case's conversation, with `rules`
    (default: the thresholds the applier uses, from HANDOFF_AUDITOR QUALITY_*) and the
    case's own overrides (a brand's allowed tools)."""
    base = rules or quality_config(auditor_settings).default
    overrides = dict(case.get("rules") or {})
    if "allowed_tools" in overrides:
        overrides["allowed_tools"] = tuple(overrides["allowed_tools"])
    config = QualityConfig(default=Rules(**{**base.__dict__, **overrides}))
    decider = QualityDecider(QualityContext(), config)
    at = _START
    for position, entry in enumerate(case["conversation"], start=1):
        at += timedelta(seconds=40)
        if "handoff" in entry:
            decider.handoff(_CONVERSATION, at)
            continue
        kind = AuthorKind.CUSTOMER if "customer" in entry else AuthorKind.AI
        text = entry.get("customer", entry.get("ai", ""))
        for n, step in enumerate(entry.get("steps", ())):
            decider.step(_CONVERSATION, _step_row(step, f"{case['id']}-{position}-{n}",
                                                  position, at - timedelta(seconds=3)),
                         "support@example.com")
        decider.message(_CONVERSATION, position, author_kind=kind, text=text, at=at,
                        key=None, business="support@example.com", position=position)
    return {row.kind for row in decider.flags({})}


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p and r else None

    @property
    def meets_target(self) -> bool:
        return (self.precision is not None and self.recall is not None
                and self.precision >= TARGET_PRECISION and self.recall >= TARGET_RECALL)


def evaluate(cases: list[dict[str, Any]], rules: Rules | None = None
             ) -> dict[str, dict[str, Score]]:
    """{split: {check: Score}} over the cases."""
    report = {split: {check: Score() for check in CHECKS} for split in SPLITS}
    for case in cases:
        raised = run_case(case, rules)
        expected = set(case.get("expect", ()))
        for check in CHECKS:
            score = report[case["split"]][check]
            if check in raised and check in expected:
                score.tp += 1
            elif check in raised:
                score.fp += 1
                score.false_positives.append(case["id"])
            elif check in expected:
                score.fn += 1
                score.false_negatives.append(case["id"])
            else:
                score.tn += 1
    return report
