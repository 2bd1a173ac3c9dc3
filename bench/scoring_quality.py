"""bench-scoring, part 1b: the answer-quality checks' decide cost, in this process.

The checks run in the applier (the apply path's decide layer,
conversations.ingest_quality.QualityDecider), not in the scoring worker, so a message's
way through the pipeline costs its scoring plus its quality decision. This plays the
labelled conversations of tests/fixtures/quality/ (customer messages, AI replies with their
retrieval, tool and guardrail steps) through the decider, as `make validate-quality` does,
round after round until BENCH_SCORING_QUALITY messages, and times it:

- floor: splitting each message into words (the least any check does to a message);
- quality decider: turn building and all eight checks, lexical core (QUALITY_EMBEDDINGS off);
- with embeddings: the same with the embeddings variant of ungrounded_answer on, over
  BENCH_SCORING_QUALITY_EMBEDDINGS messages (model load not counted; 0 skips).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

QUALITY = int(os.environ.get("BENCH_SCORING_QUALITY", "20000"))
QUALITY_EMBEDDINGS = int(os.environ.get("BENCH_SCORING_QUALITY_EMBEDDINGS", "2000"))


def _messages(case: dict[str, Any]) -> list[str]:
    return [e.get("customer", e.get("ai", "")) for e in case["conversation"]
            if "handoff" not in e]


def _rounds(cases: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Cases, repeated in order, until they hold `limit` messages."""
    out, count = [], 0
    while count < limit:
        for case in cases:
            out.append(case)
            count += len(_messages(case))
            if count >= limit:
                break
    return out


def _timed(fn: Any, messages: int) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    return messages / wall, messages / max(used, 1e-9)


def quality_in_process() -> dict[str, Any]:
    from conversations.conf import auditor_settings
    from conversations.ingest_quality import quality_config
    from conversations.quality.text import words
    from conversations.quality_set import load_cases, run_case

    cases = load_cases()
    work = _rounds(cases, QUALITY)
    texts = [t for case in work for t in _messages(case)]
    rules = quality_config(auditor_settings).default
    figures: dict[str, Any] = {"messages": len(texts), "cases": len(work),
                               "replies": sum(1 for c in work for e in c["conversation"]
                                              if "ai" in e)}

    def floor() -> None:
        for text in texts:
            words(text)

    def decide() -> None:
        for case in work:
            run_case(case, rules)

    for case in cases[:50]:  # warm caches (compiled patterns, the stem cache)
        run_case(case, rules)
    figures["floor"], figures["floor cpu"] = _timed(floor, len(texts))
    figures["quality"], figures["quality cpu"] = _timed(decide, len(texts))
    per_case: list[float] = []
    for case in cases:
        start = time.perf_counter()
        run_case(case, rules)
        per_case.append((time.perf_counter() - start) * 1000 / max(len(_messages(case)), 1))
    figures["per message ms"] = sorted(per_case)
    if QUALITY_EMBEDDINGS:
        from scoring.embeddings import embeddings_available, encode

        if embeddings_available():
            import logging

            logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
            with_model = replace(rules, embedder=encode)
            some = _rounds(cases, QUALITY_EMBEDDINGS)
            for case in cases[:20]:  # load the model
                run_case(case, with_model)
            n = sum(len(_messages(c)) for c in some)

            def decide_embeddings() -> None:
                for case in some:
                    run_case(case, with_model)

            figures["embeddings"], figures["embeddings cpu"] = _timed(decide_embeddings, n)
            figures["embeddings messages"] = n
    return figures


def quality_lines(q: dict[str, Any], scorers: float, target: float) -> list[str]:
    """The report lines: the decider alone (the applier process's share, the figure the
    2,000 msg/s per process target is read on), and, for scale, scoring and deciding each
    message serially in one process (1 / (1/scorers + 1/decider)), which no deployment does:
    the scoring worker and the applier are separate processes."""
    ms = q["per message ms"]

    def at(p: float) -> float:
        return ms[min(len(ms) - 1, int(p * len(ms)))]

    pipeline = 1 / (1 / scorers + 1 / q["quality"])
    lines = [
        f"answer-quality checks, in one process: the apply path's decide layer "
        f"(QualityDecider), {q['messages']} messages of {q['cases']} labelled conversations "
        f"({q['replies']} AI replies, with their retrieval, tool and guardrail steps)",
        f"  floor (split into words)   {q['floor']:9.0f} msg/s   ({q['floor cpu']:.0f} per "
        "CPU-second)",
        f"  quality decider, lexical   {q['quality']:9.0f} msg/s   ({q['quality cpu']:.0f} per "
        f"CPU-second)   ratio to floor {q['quality'] / q['floor']:.3f}",
        f"  decide cost per message    p50 {at(0.5):.3f} ms  p95 {at(0.95):.3f} ms  "
        f"p99 {at(0.99):.3f} ms  (per conversation of the set, divided by its messages)",
        f"  scorers + quality checks   {pipeline:9.0f} msg/s   (for scale: one process doing "
        "both for each message; they run in two)",
    ]
    if q.get("embeddings"):
        lines.append(
            f"  quality decider, embeddings {q['embeddings']:8.0f} msg/s   "
            f"({q['embeddings cpu']:.0f} per CPU-second, {q['embeddings messages']} messages, "
            f"model load not counted)   ratio to floor {q['embeddings'] / q['floor']:.4f}")
    else:
        lines.append("  quality decider, embeddings not run")
    return lines
