"""The sweep on PostgreSQL, set-based: per batch, one statement marks the due waits (and
bumps their handoffs) and returns what the evidence needs, one upsert raises or refreshes
all their flags, one UPDATE raises the conversations' severity rank. The ORM path in
services.py does the same one row at a time (SQLite, the embedded default).

Statements go through a psycopg cursor on Django's connection, so arrays are bound on the
server instead of being quoted value by value in Python (the bulk of the cost at 10,000
findings per sweep).
"""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection, transaction

from conversations.models import FLAG_SEVERITY_RANK, Flag

from .business_time import business_seconds
from .machine import WAITING

_FLAG = Flag._meta.db_table

WAITS = """
WITH due AS (
  SELECT id FROM handoffs_wait
  WHERE ended_at IS NULL AND stalled_at IS NULL AND deadline_at <= %(now)s
  ORDER BY deadline_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
), marked AS (
  UPDATE handoffs_wait AS w SET stalled_at = %(now)s FROM due WHERE w.id = due.id
  RETURNING w.handoff_id, w.kind, w.started_at, w.deadline_at, w.allowed_seconds,
            w.business_hours
), bumped AS (
  UPDATE handoffs_handoff AS h SET stalled_count = h.stalled_count + 1
  FROM (SELECT DISTINCT handoff_id FROM marked) AS m WHERE h.id = m.handoff_id
  RETURNING h.id, h.conversation_id, h.number, h.channel, h.queue, h.agent_id,
            h.stalled_count - 1 AS stalled_before, (h.policy -> 'id')::text AS policy_id,
            h.policy ->> 'name' AS policy_name, (h.policy -> 'calendar')::text AS calendar
)
SELECT m.kind, m.started_at, m.deadline_at, m.allowed_seconds, m.business_hours,
       b.id, b.conversation_id, b.number, b.channel, b.queue, b.agent_id, b.stalled_before,
       b.policy_id, b.policy_name, b.calendar
FROM marked AS m JOIN bumped AS b ON b.id = m.handoff_id ORDER BY m.deadline_at
"""

WINDOWS = """
WITH due AS (
  SELECT id, window_expires_at FROM handoffs_handoff WHERE window_expires_at <= %(now)s
  ORDER BY window_expires_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
UPDATE handoffs_handoff AS h SET window_expires_at = NULL,
  dropped_reasons = CASE WHEN h.state = ANY(%(waiting)s)
      AND NOT h.dropped_reasons ? 'whatsapp_window_expired'
    THEN h.dropped_reasons || '["whatsapp_window_expired"]' ELSE h.dropped_reasons END,
  dropped_at = CASE WHEN h.state = ANY(%(waiting)s) THEN coalesce(h.dropped_at, %(now)s)
    ELSE h.dropped_at END
FROM due WHERE h.id = due.id
RETURNING h.id, h.conversation_id, h.state, h.number, h.channel, h.requested_at,
          h.requested_by, h.last_customer_message_at, due.window_expires_at,
          (h.policy -> 'id')::text, h.policy ->> 'name'
"""

# One active flag per finding (the partial unique index): a second stall of a handoff adds
# to `stalls`, a second drop reason to `reasons` and `details`.
FLAGS = f"""
INSERT INTO {_FLAG} AS f (conversation_id, kind, severity, status, subject_type,
    subject_id, evidence, raised_at, updated_at, status_changed_by, note)
SELECT c, %(kind)s, s, 'open', 'handoff', h, e::jsonb, %(now)s, %(now)s, '', ''
FROM unnest(%(conv)s::bigint[], %(sev)s::text[], %(handoff)s::bigint[], %(ev)s::text[])
     AS t(c, s, h, e)
ON CONFLICT (kind, subject_type, subject_id) WHERE status IN ('open', 'acknowledged')
DO UPDATE SET {{merge}}, severity = 'high', updated_at = EXCLUDED.updated_at
RETURNING (xmax = 0)
"""
STALLED_MERGE = (
    "evidence = EXCLUDED.evidence || jsonb_build_object('stalls', "
    "coalesce(f.evidence -> 'stalls', '[]') || (EXCLUDED.evidence -> 'stalls'))"
)
DROPPED_MERGE = (
    "evidence = EXCLUDED.evidence || jsonb_build_object("
    "'reasons', (SELECT jsonb_agg(DISTINCT r) FROM jsonb_array_elements_text("
    "coalesce(f.evidence -> 'reasons', '[]') || (EXCLUDED.evidence -> 'reasons')) AS r), "
    "'details', coalesce(f.evidence -> 'details', '{}') || (EXCLUDED.evidence -> 'details'))"
)

# Raising flags can only raise a conversation's rank.
RANK = """
UPDATE conversations_conversation AS c SET open_flag_rank = t.r
FROM (SELECT id, max(r) AS r FROM unnest(%s::bigint[], %s::int[]) AS u(id, r) GROUP BY id) AS t
WHERE c.id = t.id AND c.open_flag_rank < t.r
"""


def _cursor() -> psycopg.Cursor:
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _raise(cur: psycopg.Cursor, *, kind: str, merge: str, now: datetime,
           findings: list[tuple[int, str, int, dict[str, Any]]],
           mark: Callable[[list[int]], None]) -> int:
    """Upsert flags for (conversation, severity, handoff, evidence); returns how many new.
    `mark` gets the conversations whose handoffs changed (dashboard days)."""
    conv = [f[0] for f in findings]
    mark(conv)
    severity = [f[1] for f in findings]
    created = cur.execute(FLAGS.format(merge=merge), {
        "kind": kind, "now": now, "conv": conv, "sev": severity,
        "handoff": [f[2] for f in findings], "ev": [json.dumps(f[3]) for f in findings],
    }).fetchall()
    cur.execute(RANK, [conv, [FLAG_SEVERITY_RANK[s] for s in severity]])
    return sum(1 for (new,) in created if new)


def sweep_waits(
    now: datetime, limit: int, *, kind: str, evidence: Callable[..., dict[str, Any]],
    calendar: Callable[[str], Any], mark: Callable[[list[int]], None],
) -> tuple[int, int, dict[str, int]]:
    """One batch of due waits -> handoff_stalled. Returns (stalled, flags created, by state)."""
    with transaction.atomic(), _cursor() as cur:
        rows = cur.execute(WAITS, {"now": now, "limit": limit}).fetchall()
        if not rows:
            return 0, 0, {}
        findings = []
        by_state: dict[str, int] = {}
        for (state, started, deadline, allowed, business, handoff_id, conversation_id, number,
             channel, queue, agent, stalled_before, policy_id, policy_name, cal) in rows:
            waited = business_seconds(started, now, calendar(cal) if business and cal else None)
            findings.append((
                conversation_id, "medium" if stalled_before < 1 else "high", handoff_id,
                {**evidence(
                    state=state, started=started, deadline=deadline, allowed=allowed,
                    business=business, waited=waited,
                    policy={"id": json.loads(policy_id) if policy_id else None,
                            "name": policy_name},
                    number=number, channel=channel, queue=queue, agent=agent, at=now,
                ), "stalls": [state]},
            ))
            by_state[state] = by_state.get(state, 0) + 1
        created = _raise(cur, kind=kind, merge=STALLED_MERGE, now=now, findings=findings,
                         mark=mark)
    return len(rows), created, by_state


def sweep_windows(now: datetime, limit: int, *, kind: str, reason: str,
                  detail: Callable[..., dict[str, Any]],
                  mark: Callable[[list[int]], None]) -> tuple[int, int]:
    """One batch of due WhatsApp windows -> handoff_dropped. Returns (rows, flagged)."""
    with transaction.atomic(), _cursor() as cur:
        rows = cur.execute(WINDOWS, {"now": now, "limit": limit,
                                     "waiting": sorted(WAITING)}).fetchall()
        findings = []
        for (handoff_id, conversation_id, state, number, channel, requested_at, requested_by,
             last_customer, expired, policy_id, policy_name) in rows:
            if state not in WAITING:
                continue
            findings.append((conversation_id, "high", handoff_id, {
                "reason": reason, "reasons": [reason], "handoff": number, "channel": channel,
                "requested_at": requested_at.isoformat(), "requested_by": requested_by,
                "state": state,
                "policy": {"id": json.loads(policy_id) if policy_id else None,
                           "name": policy_name},
                "details": {reason: detail(
                    last_customer=last_customer, expired=expired, state=state,
                    requested_at=requested_at, now=now)},
            }))
        if findings:
            _raise(cur, kind=kind, merge=DROPPED_MERGE, now=now, findings=findings, mark=mark)
    return len(rows), len(findings)
