"""ungrounded_answer (lexical core) and weak_retrieval.

A reply after a retrieval step is checked sentence by sentence: the share of a sentence's
content words (stems, no stopwords) found in the one chunk (or tool result, or customer
message) that covers it best; under `support_min` it is unsupported. Facts (prices,
numbers, dates, URLs, e-mail addresses, ids, product names) must appear in a chunk, a
tool result, the model's input or the customer's own words. Greetings, questions back and
offers to help are not claims and are not checked for support.
"""

from __future__ import annotations

import re
from typing import Any

from .context import Finding, Rules, Span, Turn
from .text import content_stems, facts, sentences, source_folded, source_values, stem, words

_NOT_A_CLAIM = re.compile(
    r"\b(let me know|happy to help|anything else|sorry|apolog|thank|hope|have a (great|nice|good)"
    r"|glad to|feel free|con gusto|algo m[aá]s|lo siento|disculp|gracias|que tengas|"
    r"estoy aqu[ií])", re.I)
_HEDGE = re.compile(
    r"(not (entirely |completely |100% )?sure|i don'?t know|do not know|don'?t have (that|this|"
    r"enough|the) (info|detail)|(could ?n[o']?t|can ?n?[o']?t|unable to|wasn'?t able to) find|"
    r"connect you|transfer(ring)? you|hand (you )?over|colleague|human agent|a person\b|"
    r"specialist|team member|escalat|no estoy segur|no (lo )?s[eé]\b|no tengo (esa|esta|"
    r"informaci)|no encontr[eé]|te (paso|comunico) con|un agente|una persona\b|compa[nñ]er)", re.I)
_HANDOFF_TOOL = re.compile(r"handoff|hand_off|transfer|escalat|human", re.I)
STRONG_FACTS = frozenset({"price", "date", "url", "email", "id"})


def retrieval_steps(turn: Turn) -> list[Any]:
    return [s for s in turn.steps if s.operation == "retrieval" or s.retrieved_documents]


def _chunks(turn: Turn) -> list[tuple[str, str, Any, str]]:
    """(document id, step id, score, text) of every retrieved chunk that has text."""
    return [(str(d.get("id") or d.get("title") or i), s.external_id, d.get("score"),
             str(d.get("text") or ""))
            for s in retrieval_steps(turn) for i, d in enumerate(s.retrieved_documents)
            if d.get("text")]


def is_claim(sentence: str) -> bool:
    s = sentence.strip()
    return not (s.endswith("?") or s.endswith("¿") or _NOT_A_CLAIM.search(s)
                or _HEDGE.search(s) or len(content_stems(s)) < 3)


def _match_spans(chunk: str, stems: set[str], limit: int = 20) -> list[Span]:
    out: list[Span] = []
    for start, end, w in words(chunk):
        if stem(w) in stems:
            out.append({"start": start, "end": end, "text": w})
            if len(out) >= limit:
                break
    return out


def ungrounded_answer(turn: Turn, rules: Rules) -> Finding | None:
    chunks = _chunks(turn)
    if not chunks:  # no retrieval, or chunks sent without text: nothing to judge against
        return None
    text = turn.reply.text
    tools = [s.tool_result_text for s in turn.steps if s.tool_result_text]
    customer = [m.text for m in turn.customer]
    model_input = [str(m.get("content") or "") for s in turn.steps for m in s.input_messages
                   if m.get("role") in ("system", "user", "tool")]
    model_input += [s.system_prompt for s in turn.steps if s.system_prompt]
    candidates = [(cid, sid, score, ctext, content_stems(ctext))
                  for cid, sid, score, ctext in chunks]
    candidates += [("tool result", "", None, t, content_stems(t)) for t in tools]
    candidates += [("customer", "", None, t, content_stems(t)) for t in customer]
    sources = [c[3] for c in candidates] + model_input
    values = source_values(sources)
    folded = source_folded(sources)

    # A sentence that hedges or hands over states nothing as fact ("I'm not 100% sure").
    hedges = [(s, e) for s, e, t in sentences(text) if _HEDGE.search(t)]
    unsupported_facts: list[Span] = []
    for f in facts(text):
        value = str(f["value"])
        if any(s <= f["start"] < e for s, e in hedges):  # type: ignore[operator]
            continue
        if value in values or (f["kind"] in ("name", "url", "email") and value in folded):
            continue
        unsupported_facts.append({"start": f["start"], "end": f["end"], "text": f["text"],
                                  "kind": f["kind"],
                                  "why": f"this {f['kind']} appears in no retrieved chunk, "
                                         "tool result or customer message"})
    unsupported: list[dict[str, Any]] = []
    checked = 0
    for start, end, sentence in sentences(text):
        if not is_claim(sentence):
            continue
        checked += 1
        stems = content_stems(sentence)
        best = max(candidates, key=lambda c: len(stems & c[4]))
        support = len(stems & best[4]) / len(stems)
        if support < rules.support_min:
            unsupported.append({
                "start": start, "end": end, "text": sentence, "support": round(support, 2),
                "best_source": best[0], "step": best[1],
                "why": f"only {support:.0%} of its words appear in the closest retrieved chunk",
                "chunk_spans": _match_spans(best[3], stems) if best[1] else [],
            })
    if not unsupported_facts and not unsupported:
        return None
    strong = any(f["kind"] in STRONG_FACTS for f in unsupported_facts)
    spans = sorted([*({k: u[k] for k in ("start", "end", "text", "why")} for u in unsupported),
                    *({k: f[k] for k in ("start", "end", "text", "why")}
                      for f in unsupported_facts)], key=lambda s: (s["start"], -s["end"]))
    return Finding("ungrounded_answer", "high" if strong else "medium", {
        "method": "lexical",
        "message_spans": spans,
        "unsupported_sentences": unsupported,
        "unsupported_facts": unsupported_facts,
        "sentences_checked": checked,
        "support_min": rules.support_min,
        "chunks": [{"id": cid, "step": sid, "score": score, "text": ctext[:2000]}
                   for cid, sid, score, ctext in chunks[:10]],
    })


def hands_off(turn: Turn) -> Span | None:
    """Where the reply hands over or admits it does not know (or a handoff was requested,
    or a handoff tool called): None when it answers confidently."""
    m = _HEDGE.search(turn.reply.text)
    if m:
        return {"start": m.start(), "end": m.end(), "text": m.group(0)}
    if turn.handoff_requested or any(
            s.tool_name and _HANDOFF_TOOL.search(s.tool_name) for s in turn.steps):
        return {"start": 0, "end": 0, "text": ""}
    return None


def weak_retrieval(turn: Turn, rules: Rules) -> Finding | None:
    steps = retrieval_steps(turn)
    if not steps:
        return None
    documents = [d for s in steps for d in s.retrieved_documents]
    scores = [float(d["score"]) for d in documents
              if isinstance(d.get("score"), int | float) and not isinstance(d["score"], bool)]
    best = max(scores) if scores else None
    if documents and (best is None or best >= rules.retrieval_min_score):
        return None
    if hands_off(turn) is not None:
        return None
    claims = [{"start": s, "end": e, "text": t,
               "why": "stated as fact" + (" with nothing retrieved" if not documents else
                                          f" though the best chunk scored {best:.2f}")}
              for s, e, t in sentences(turn.reply.text) if is_claim(t)]
    if not claims:
        return None
    query = next((s.retrieval_query for s in steps if s.retrieval_query), "")
    return Finding("weak_retrieval", "high" if not documents else "medium", {
        "message_spans": claims,
        "best_score": best,
        "threshold": rules.retrieval_min_score,
        "documents": len(documents),
        "query": query[:500],
        "steps": [s.external_id for s in steps],
    })
