"""Answer-quality checks: pure functions over one AI turn, explainable by character spans.

    ingest_decide (the one apply path) ──▶ ingest_quality ──▶ checks here
                                       ──▶ Finding(kind, severity, evidence) ──▶ plan.flags

No database, no model instances: a `Turn` (context.py) is the reply, the customer's
messages since the previous AI reply, the AI steps of the turn and the previous AI
replies; `Rules` are the thresholds. Modules by concern: text.py (sentences, words, facts),
grounding.py (ungrounded_answer, weak_retrieval), tools.py (tool_failure,
guardrail_tripped, excessive_agency), injection.py (prompt_injection,
injection_followed), loops.py (ai_loop), checks.py (which run on what), sentences.py
(FLAG_SENTENCES). The embeddings variant of ungrounded_answer (QUALITY_EMBEDDINGS) is a
callable in Rules.embedder, named by a dotted path in the settings, so this package imports
no model. See docs/answer-quality.md.
"""
