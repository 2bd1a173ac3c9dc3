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
from .text import (
    STOPWORDS,
    content_stems,
    facts,
    fold,
    sentences,
    source_folded,
    source_values,
    stem,
    words,
)

# Matched on accent-folded, lower-cased text (fold keeps the length, so spans map back).
_NOT_A_CLAIM = re.compile(
    r"\b(let me know|happy to help|anything else|sorry|apolog|thank|hope|have a (great|nice|good)"
    r"|glad to|feel free|con gusto|algo mas|lo siento|disculp|gracias|que tengas|"
    r"estoy aqui|avec plaisir|autre chose|desole|merci|bonne (journee|soiree)|"
    r"mais alguma|outra coisa|com todo o gosto|lamento|obrigad|boa (tarde|noite|dia))")
# A sentence that hedges or hands over states nothing as fact. English, Spanish, French,
# Portuguese.
_HEDGE = re.compile("|".join((
    # English
    r"not (entirely |completely |100% |quite |totally )?(sure|certain)|i don'?t know|"
    r"do not know|don'?t have (that|this|enough|the|those|any|our|your|its)\b[\w\s'-]{0,20}"
    r"(info|detail|data|polic)|(could ?n[o']?t|can ?n?[o']?t|unable to|wasn'?t able to|"
    r"not able to) (find|see|confirm|check|tell|access)|connect you|transfer(ring)? you|"
    r"hand (you )?over|handing you|pass(ing)? (you|your question|this|it|that)( on| over)? "
    r"to|colleague|human agent|a person\b|specialist|team member|escalat|check with (our|the|a)"
    r"|get back to you|look into (it|this) and",
    # Spanish
    r"no estoy segur|no (lo )?se\b|no tengo (esa|esta|ese|informaci|los datos|acceso|el dato)"
    r"|no encontr[eo]|no (puedo|consigo) (verlo|ver|confirmar|consultar|comprobar|saber)|"
    r"te (paso|comunico|transfiero|derivo|pongo en contacto) con|un agente|una persona\b|"
    r"companer|(consultarlo|lo consulto|consultare)",
    # French
    r"(ne suis|n'en suis) pas (sur|certain)|je ne sais pas|je n'ai pas (trouve|l'info|"
    r"acces|cette info|les (details|informations))|je ne (peux|parviens) pas (a )?(voir|"
    r"confirmer|trouver|verifier)|(mets|mettre) en relation|je (vous )?transfere|transmets|"
    r"transmettre|un conseiller|une conseillere|un collegue|je me renseigne|"
    r"je reviens vers vous|je demande|demander (a|au)",
    # Portuguese
    r"nao (tenho|tem) (a )?(certeza|essa informac|acesso|esse dado)|nao sei\b|nao (encontrei|"
    r"consigo (ver|confirmar|saber))|encaminh|transferi|(vou )?passar (a sua|o seu|voce|"
    r"o senhor|a senhora)|(um|uma|ao|a) (colega|atendente|agente|consultor)|verificar com|"
    r"volto a falar|retorno (em|ainda|ja)")))
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
    folded = fold(s)
    return not (s.endswith("?") or s.endswith("¿") or _NOT_A_CLAIM.search(folded)
                or _HEDGE.search(folded) or len(content_stems(s)) < 3)


def _match_spans(chunk: str, stems: set[str], limit: int = 20) -> list[Span]:
    out: list[Span] = []
    for start, end, w in words(chunk):
        if stem(w) in stems:
            out.append({"start": start, "end": end, "text": w})
            if len(out) >= limit:
                break
    return out


# The words the customer did not use need this share of support_min in their best source.
_NEW_WORDS_SHARE = 0.75

Candidate = tuple[str, str, Any, str, set[str]]  # id, step, score, text, content stems

# Negations, after fold: a chunk that says "cannot be returned" does not support "can be
# returned" although it shares every word.
_NEGATION = re.compile(
    r"\b(not|no|never|cannot|can't|won't|don't|doesn't|isn't|aren't|wasn't|weren't|"
    r"nunca|ni|ningun\w*|ne|pas|jamais|aucun\w*|nao|nem|nenhum\w*)\b|n't\b")
_NEGATION_REACH = 3  # content words looked at on each side of a negation
# A negation under a condition ("cannot be returned if the liner was removed") does not
# deny the plain statement ("can be returned if the liner is intact").
_CONDITION = re.compile(r"^\W*(\w+\W+){0,3}(if|unless|when|once|except|si|salvo|excepto|"
                        r"cuando|sauf|quand|lorsque|caso|exceto|quando)\b")


def _negated(text: str) -> list[set[str]]:
    """For each negation in a text: the stems of the nearest content word before it and
    of the nearest one or two after it (the thing negated and what is said of it)."""
    tokens = [(s, stem(w), len(w) > 1 and fold(w) not in STOPWORDS)
              for s, _, w in words(fold(text))]
    found = []
    for m in _NEGATION.finditer(fold(text)):
        if _CONDITION.match(fold(text)[m.end():]):
            continue
        before = [t for s, t, content in tokens if content and s < m.start()][-1:]
        after = [t for s, t, content in tokens if content and s >= m.end()
                 and not _NEGATION.fullmatch(t)][:_NEGATION_REACH]
        key = set(before + after[:1]) if before else set(after[:2])
        if len(key) >= 2:
            found.append(key)
    return found


def _contradicts(sentence: str, stems: set[str], source: str) -> set[str] | None:
    """The source negates what the sentence states without a negation: the words of the
    negated phrase, all in the sentence. None when it does not."""
    if _NEGATION.search(fold(sentence)):
        return None
    for _, _, chunk_sentence in sentences(source):
        for key in _negated(chunk_sentence):
            if key <= stems:
                return key
    return None


def sentence_support(sentence: str, candidates: list[Candidate], asked: set[str],
                     rules: Rules) -> dict[str, Any] | None:
    """None when the sources support the sentence, else why not (support, best source,
    the words it shares with it). Two counts must reach `support_min`: the share of the
    sentence's words in its best source, and (three quarters of it) the share of the
    words the customer did not use in theirs. Repeating the question is not support
    ("clinically proven to reduce back pain" after "is it good for back pain?")."""
    stems = content_stems(sentence)
    best = max(candidates, key=lambda c: len(stems & c[4]))
    support = len(stems & best[4]) / len(stems)
    new = stems - asked
    if new and support >= rules.support_min:
        told = max(candidates, key=lambda c: len(new & c[4]))
        if len(new & told[4]) / len(new) < rules.support_min * _NEW_WORDS_SHARE:
            best, support = told, len(new & told[4]) / len(new)
    if support >= rules.support_min:
        negated = next((k for c in candidates if c[1] and len(stems & c[4]) >= 2
                        for k in [_contradicts(sentence, stems, c[3])] if k), None)
        if negated is None:
            return None
        return {"support": round(support, 2), "best_source": best[0], "step": best[1],
                "rule": "negation",
                "why": "the retrieved chunk says the opposite (" + ", ".join(sorted(negated))
                       + " with a negation)",
                "chunk_spans": _match_spans(best[3], negated) if best[1] else []}
    return {"support": round(support, 2), "best_source": best[0], "step": best[1],
            "rule": "support",
            "why": f"only {support:.0%} of its words appear in the closest retrieved chunk",
            "chunk_spans": _match_spans(best[3], stems) if best[1] else []}


def _by_meaning(unsupported: list[dict[str, Any]], candidates: list[Candidate],
                rules: Rules) -> list[dict[str, Any]]:
    """The embeddings variant: a sentence the words left unsupported (not one a chunk
    negates) is supported after all when its cosine similarity to a sentence of a chunk or
    tool result reaches `embedding_support_min`. Each one kept says how close it came."""
    todo = [u for u in unsupported if u["rule"] == "support"]
    parts = [t for c in candidates if c[0] != "customer" for _, _, t in sentences(c[3])]
    if not todo or not parts or rules.embedder is None:
        return unsupported
    vectors = rules.embedder([u["text"] for u in todo] + parts)
    sims = vectors[:len(todo)] @ vectors[len(todo):].T
    kept = []
    for u in unsupported:
        if u["rule"] == "support":
            row = sims[todo.index(u)]
            best = int(row.argmax())
            similarity = float(row[best])
            if similarity >= rules.embedding_support_min:
                continue
            u = {**u, "similarity": round(similarity, 3), "closest": parts[best][:300],
                 "why": u["why"] + f", and its meaning is {similarity:.2f} close to the "
                        "nearest sentence of one (embeddings)"}
        kept.append(u)
    return kept


def ungrounded_answer(turn: Turn, rules: Rules) -> Finding | None:
    chunks = _chunks(turn)
    if not chunks:  # no retrieval, or chunks sent without text: nothing to judge against
        return None
    text = turn.reply.text
    # A tool's result, with its name: "update_address" returned ok supports "I have
    # updated the address".
    tools = [f"{s.tool_name.replace('_', ' ')}: {s.tool_result_text}" for s in turn.steps
             if s.tool_result_text and not s.tool_error]
    customer = [m.text for m in turn.customer]
    model_input = [str(m.get("content") or "") for s in turn.steps for m in s.input_messages
                   if m.get("role") in ("system", "user", "tool")]
    model_input += [s.system_prompt for s in turn.steps if s.system_prompt]
    candidates = [(cid, sid, score, ctext, content_stems(ctext))
                  for cid, sid, score, ctext in chunks]
    candidates += [("tool result", "", None, t, content_stems(t)) for t in tools]
    asked = set().union(*(content_stems(t) for t in customer))
    sources = [c[3] for c in candidates] + customer + model_input
    values = source_values(sources)
    folded = source_folded(sources)
    source_words = {w for _, _, w in words(folded)}

    # A sentence that hedges or hands over states nothing as fact ("I'm not 100% sure").
    hedges = [(s, e) for s, e, t in sentences(text) if _HEDGE.search(fold(t))]
    unsupported_facts: list[Span] = []
    for f in facts(text):
        value = str(f["value"])
        if any(s <= f["start"] < e for s, e in hedges):  # type: ignore[operator]
            continue
        if value in values or (f["kind"] in ("name", "url", "email") and value in folded):
            continue
        # A name whose every word is in the sources ("Download PDF" after "click Download
        # invoice (PDF)") names what they name.
        if f["kind"] == "name" and all(w in source_words for _, _, w in words(value)):
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
        judged = sentence_support(sentence, candidates, asked, rules)
        if judged is not None:
            unsupported.append({"start": start, "end": end, "text": sentence, **judged})
    if rules.embedder is not None:
        unsupported = _by_meaning(unsupported, candidates, rules)
    if not unsupported_facts and not unsupported:
        return None
    strong = any(f["kind"] in STRONG_FACTS for f in unsupported_facts)
    spans = sorted([*({k: u[k] for k in ("start", "end", "text", "why")} for u in unsupported),
                    *({k: f[k] for k in ("start", "end", "text", "why")}
                      for f in unsupported_facts)], key=lambda s: (s["start"], -s["end"]))
    return Finding("ungrounded_answer", "high" if strong else "medium", {
        "method": "lexical" if rules.embedder is None else "lexical+embeddings",
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
    text = turn.reply.text
    folded = fold(text)
    m = _HEDGE.search(folded)
    if m:
        start, end = (m.start(), m.end()) if len(folded) == len(text) else (0, len(text))
        return {"start": start, "end": end, "text": text[start:end]}
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
