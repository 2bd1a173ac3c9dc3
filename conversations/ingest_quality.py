"""Decide, answer quality: which AI replies and customer messages of a batch to check, the
turn each reply closes, and the flags the checks find. Pure Python, called by
ingest_decide (the one apply path), from the state ingest_quality_load read.

A reply's turn: the customer's messages since the previous AI reply; the AI steps linked to
the reply (by message, or by its provider id while the message had not come), the steps
linked to no message dated after the previous AI reply and up to the reply, and the
steps sharing a trace id with the linked ones; a handoff requested in the batch by then.
A reply is checked when it is recorded and again when a step of its turn arrives later
(flags upsert: the active flag of a finding is refreshed, not doubled). Steps that belong
to no reply (a blocked answer) are checked alone, on the conversation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils.module_loading import import_string

from .ingest_state import QualityContext
from .models import AuthorKind
from .quality.checks import customer_check, orphan_steps_check, reply_check
from .quality.context import Finding, Rules, Said, Step, Turn
from .quality.loops import only_asks_to_wait

Key = tuple[str, str]
STEP_SLACK = timedelta(seconds=5)  # a step may be stamped just after the message it made
HANDOFF_SLACK = timedelta(seconds=60)
EARLIER_REPLIES = 5


@dataclass(frozen=True)
class QualityConfig:
    default: Rules = Rules()
    by_business: dict[str, Rules] = field(default_factory=dict)

    def rules(self, business: str) -> Rules:
        return self.by_business.get(business.lower(), self.default)


def quality_embedder(settings: Any) -> Any:
    """The encoder of the embeddings variant, or None when QUALITY_EMBEDDINGS is off.
    Named by a dotted path (QUALITY_EMBEDDER), so this app needs no import of the one that
    ships the model; the model itself loads on first use."""
    if not getattr(settings, "QUALITY_EMBEDDINGS", False):
        return None
    return import_string(settings.QUALITY_EMBEDDER)


def quality_config(settings: Any) -> QualityConfig:
    """The checks' thresholds from the plugin settings (auditor_settings)."""
    base = {"retrieval_min_score": float(settings.QUALITY_RETRIEVAL_MIN_SCORE),
            "support_min": float(settings.QUALITY_SUPPORT_MIN),
            "tool_retries_max": int(settings.QUALITY_TOOL_RETRIES_MAX),
            "allowed_tools": tuple(settings.QUALITY_ALLOWED_TOOLS),
            "loop_similarity": float(settings.QUALITY_LOOP_SIMILARITY),
            "embedder": quality_embedder(settings),
            "embedding_support_min": float(settings.QUALITY_EMBEDDING_SUPPORT_MIN)}
    by_business = {}
    for address, overrides in (settings.QUALITY_BY_BUSINESS or {}).items():
        values = {**base, **overrides}
        values["allowed_tools"] = tuple(values["allowed_tools"])
        by_business[address.lower()] = Rules(**values)
    return QualityConfig(Rules(**base), by_business)


@dataclass
class _Entry:
    said: Said
    order: tuple[int, int]
    key: Key | None


@dataclass
class FlagRow:
    """A flag the plan raises or refreshes: conversation and subject are refs or ids;
    `evidence` may name messages by ref under "message" / "injection_message"."""

    conversation: int
    kind: str
    severity: str
    subject_type: str
    subject: int
    evidence: dict[str, Any]
    raised_at: datetime


class QualityDecider:
    """Kept by the ingest decider while it walks the batch."""

    def __init__(self, context: QualityContext, config: QualityConfig) -> None:
        self.config = config
        self.timeline: dict[int, list[_Entry]] = {}
        self.steps: dict[int, dict[str, dict[str, Any]]] = {}
        for conversation, messages in context.messages.items():
            self.timeline[conversation] = [
                _Entry(Said(m.id, m.author_kind, m.text, m.sent_at), (0, m.id),
                       (m.provider, m.provider_message_id) if m.provider_message_id else None)
                for m in messages]
        for conversation, steps in context.steps.items():
            self.steps[conversation] = {s["external_id"]: s for s in steps}
        self.business: dict[int, str] = {}
        self.replies: set[tuple[int, int]] = set()
        self.customers: list[tuple[int, Said]] = []
        self.loose_steps: list[tuple[int, str]] = []
        self.handoffs: dict[int, list[datetime]] = {}

    def message(self, conversation: int, ref: int, *, author_kind: str, text: str,
                at: datetime, key: Key | None, business: str, position: int) -> None:
        said = Said(ref, author_kind, text, at)
        self.timeline.setdefault(conversation, []).append(_Entry(said, (1, position), key))
        self.business.setdefault(conversation, business)
        if author_kind == AuthorKind.AI:
            self.replies.add((conversation, ref))
        elif author_kind == AuthorKind.CUSTOMER:
            self.customers.append((conversation, said))

    def step(self, conversation: int, row: dict[str, Any], business: str) -> None:
        self.steps.setdefault(conversation, {})[row["external_id"]] = row
        self.business.setdefault(conversation, business)
        if row["message_id"] is not None:
            self.replies.add((conversation, row["message_id"]))
        elif not row.get("message_provider_id"):
            self.loose_steps.append((conversation, row["external_id"]))
        # else: linked to a message not recorded yet; checked when it comes

    def handoff(self, conversation: int, at: datetime) -> None:
        self.handoffs.setdefault(conversation, []).append(at)

    # -- deciding -----------------------------------------------------------------------

    def flags(self, message_refs: dict[Key, int]) -> list[FlagRow]:
        """The flags of the batch. `message_refs`: every message the batch knows, by
        (provider, provider id), to link steps reported by the produced message's id."""
        rows: list[FlagRow] = []
        for conversation, said in self.customers:
            rows += [self._row(conversation, said.ref, f, said.at) for f in customer_check(said)]
        replies = set(self.replies) | self._overtaken()
        orphans: dict[int, list[dict[str, Any]]] = {}
        for conversation, external_id in self.loose_steps:
            step = self.steps[conversation][external_id]
            reply = next((e.said.ref for e in self._ordered(conversation)
                          if e.said.author_kind == AuthorKind.AI
                          and e.said.at >= step["occurred_at"] - STEP_SLACK), None)
            if reply is None:
                orphans.setdefault(conversation, []).append(step)
            else:
                replies.add((conversation, reply))
        for conversation, ref in sorted(replies):
            turn = self._turn(conversation, ref, message_refs)
            if turn is None:
                continue
            rules = self.config.rules(self.business.get(conversation, ""))
            rows += [self._row(conversation, ref, f, turn.reply.at)
                     for f in reply_check(turn, rules)]
        for conversation, steps in sorted(orphans.items()):
            rules = self.config.rules(self.business.get(conversation, ""))
            at = max(s["occurred_at"] for s in steps)
            for f in orphan_steps_check(tuple(_step(s) for s in steps), rules):
                rows.append(FlagRow(conversation, f.kind, f.severity, "conversation",
                                    conversation, f.evidence, at))
        return rows

    def _overtaken(self) -> set[tuple[int, int]]:
        """Recorded replies that a message of this batch, dated before them, belongs
        before: a late customer message joins the next reply's turn, a late AI reply joins
        the earlier replies of the next EARLIER_REPLIES ones. They are judged again, so
        arrival order raises what time order would have (within the loaded context)."""
        out: set[tuple[int, int]] = set()
        for conversation, entries in self.timeline.items():
            batch = [e for e in entries if e.order[0] == 1
                     and e.said.author_kind in (AuthorKind.AI, AuthorKind.CUSTOMER)]
            if not batch:
                continue
            ordered = self._ordered(conversation)
            for new in batch:
                later = [e for e in ordered if e.order[0] == 0
                         and e.said.author_kind == AuthorKind.AI
                         and (e.said.at, e.order) > (new.said.at, new.order)]
                reach = 1 if new.said.author_kind == AuthorKind.CUSTOMER else EARLIER_REPLIES
                out.update((conversation, e.said.ref) for e in later[:reach])
        return out

    def _row(self, conversation: int, ref: int, f: Finding, at: datetime) -> FlagRow:
        return FlagRow(conversation, f.kind, f.severity, "message", ref, f.evidence, at)

    def _ordered(self, conversation: int) -> list[_Entry]:
        return sorted(self.timeline.get(conversation, []), key=lambda e: (e.said.at, e.order))

    def _turn(self, conversation: int, ref: int, message_refs: dict[Key, int]) -> Turn | None:
        entries = self._ordered(conversation)
        index = next((i for i, e in enumerate(entries) if e.said.ref == ref), None)
        if index is None or entries[index].said.author_kind != AuthorKind.AI:
            return None  # a reply outside the loaded context, or not the AI's
        reply = entries[index]
        previous = next((i for i in range(index - 1, -1, -1)
                         if entries[i].said.author_kind == AuthorKind.AI), None)
        start = entries[previous].said.at if previous is not None else None
        first = previous + 1 if previous is not None else 0
        customer = tuple(e.said for e in entries[first:index]
                         if e.said.author_kind == AuthorKind.CUSTOMER)
        earlier: list[tuple[Said, bool]] = []
        later = index
        for i in range(index - 1, -1, -1):
            if entries[i].said.author_kind != AuthorKind.AI:
                continue
            answered = any(e.said.author_kind == AuthorKind.CUSTOMER
                           and not only_asks_to_wait(e.said.text)
                           for e in entries[i + 1:later])
            earlier.append((entries[i].said, answered))
            later = i
            if len(earlier) >= EARLIER_REPLIES:
                break
        steps = self._turn_steps(conversation, reply, start, message_refs)
        handoff = any((start is None or at > start) and at <= reply.said.at + HANDOFF_SLACK
                      for at in self.handoffs.get(conversation, ()))
        return Turn(reply=reply.said, customer=customer, steps=tuple(_step(s) for s in steps),
                    earlier_replies=tuple(earlier), handoff_requested=handoff)

    def _turn_steps(self, conversation: int, reply: _Entry, start: datetime | None,
                    message_refs: dict[Key, int]) -> list[dict[str, Any]]:
        def linked(step: dict[str, Any]) -> int | None:
            if step["message_id"] is not None:
                return step["message_id"]
            if step.get("message_provider_id"):
                return message_refs.get((step["message_provider"] or "events",
                                         step["message_provider_id"]), -(1 << 62))
            return None

        all_steps = sorted(self.steps.get(conversation, {}).values(),
                           key=lambda s: (s["occurred_at"], s["external_id"]))
        mine = [s for s in all_steps if linked(s) == reply.said.ref]
        traces = {s["trace_id"] for s in mine if s.get("trace_id")}
        chosen = []
        for s in all_steps:
            link = linked(s)
            if link == reply.said.ref or (traces and s.get("trace_id") in traces and link is None):
                chosen.append(s)
            elif link is None and (start is None or s["occurred_at"] > start) \
                    and s["occurred_at"] <= reply.said.at + STEP_SLACK:
                chosen.append(s)
        return chosen


def _step(row: dict[str, Any]) -> Step:
    result = row.get("tool_result")
    return Step(
        external_id=row["external_id"], operation=row.get("operation") or "",
        occurred_at=row["occurred_at"], tool_name=row.get("tool_name") or "",
        tool_error=row.get("tool_error") or "",
        tool_result_text="" if result is None else json.dumps(result, ensure_ascii=False),
        tool_retries=row.get("tool_retries"), tool_approval=row.get("tool_approval"),
        retrieved_documents=tuple(d for d in row.get("retrieved_documents") or ()
                                  if isinstance(d, dict)),
        retrieval_query=row.get("retrieval_query") or "",
        guardrails=tuple(g for g in row.get("guardrails") or () if isinstance(g, dict)),
        finish_reason=row.get("finish_reason") or "",
        system_prompt=row.get("system_prompt") or "",
        input_messages=tuple(m for m in row.get("input_messages") or () if isinstance(m, dict)),
        trace_id=row.get("trace_id") or "",
    )
