"""The outcome reports as data, for the API and the CSV (audit.api.reports, audit.reports):
every figure of audit.selectors_outcomes with the n behind it, in plain types (seconds,
0-1 rates, decimal strings for money); the CSV's long rows."""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .outcome_rollups import WORST
from .selectors_outcomes import (
    Comparison,
    Distribution,
    Estimate,
    OutcomeFigures,
    OutcomeReport,
)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def amount_text(amount: Decimal) -> str:
    """A money amount as written: at least two decimals, no trailing zeros past them."""
    normal = amount.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        normal = normal.quantize(Decimal("0.01"))
    return f"{normal:f}"


def distribution_dict(d: Distribution) -> dict[str, Any]:
    return {"n": d.n, "p50": _round(d.p50, 1), "p90": _round(d.p90, 1),
            "p99": _round(d.p99, 1)}


def figures_dict(f: OutcomeFigures) -> dict[str, Any]:
    """Every figure of a group with the n behind it (seconds for times, 0-1 for rates,
    -100..100 for NPS, 0-1 for warmth, decimal strings for money)."""
    n = f.conversations
    return {
        "key": f.key, "label": f.label, "conversations": n,
        "first_response_seconds": distribution_dict(f.first_response),
        "first_human_seconds": distribution_dict(f.first_human),
        "resolution_seconds": distribution_dict(f.resolution_time),
        "time_to_human_seconds": distribution_dict(f.time_to_human),
        "resolved": {"count": f.resolved, "n": n, "rate": _round(f.resolved_rate)},
        "contained": {"count": f.contained, "n": n, "rate": _round(f.contained_rate)},
        "escalated": {"count": f.escalated, "n": n, "rate": _round(f.escalation_rate)},
        "repeat_contact": {"count": f.repeat, "n": n, "rate": _round(f.repeat_rate)},
        "converted": {"count": f.converted, "n": n, "rate": _round(f.conversion_rate)},
        "csat": {"mean": _round(f.csat), "n": f.rated},
        "nps": {"score": _round(f.nps, 2), "n": f.nps_n, "promoters": f.promoters,
                "detractors": f.detractors},
        "revenue": {currency: amount_text(amount)
                    for currency, amount in sorted(f.revenue.items())},
        "ai_cost": {"total": str(f.cost), "n": f.costed,
                    "per_conversation": None if f.cost_per_conversation is None
                    else str(round(f.cost_per_conversation, 8))},
        "customer_warmth": {"start": _round(f.warmth_start), "end": _round(f.warmth_end),
                            "n": f.sentiment_n},
        "handoffs": {"count": f.handoffs, "reached_human": f.reached, "stalled": f.stalled,
                     "dropped": f.dropped, "resolved": f.handoff_resolved},
        "sla_met": {"count": f.sla_met, "n": f.sla_waits, "rate": _round(f.sla_rate)},
        "qa": {"score": _round(f.qa_score, 2), "n": f.qa_reviews, "failed": f.qa_failed,
               "pass_rate": _round(f.qa_pass_rate)},
    }


def report_dict(report: OutcomeReport) -> dict[str, Any]:
    return {
        "period": {"first": report.period.first.isoformat(),
                   "last": report.period.last.isoformat(), "channel": report.period.channel},
        "total": figures_dict(report.total),
        "by_channel": [figures_dict(f) for f in report.by_channel],
        "by_handoff_outcome": [figures_dict(f) for f in report.by_bucket],
        "by_day": [figures_dict(f) for f in report.by_day],
        "worst": {name: [{"conversation": pk, "value": _round(value, 6)}
                         for value, pk in report.total.worst_cases(name)] for name in WORST},
    }


def comparison_dict(c: Comparison) -> dict[str, Any]:
    def estimate(e: Estimate) -> dict[str, Any]:
        return {"value": _round(e.value, 6), "low": _round(e.low, 6),
                "high": _round(e.high, 6), "n": e.n}

    return {"figure": c.name, "label": c.label, "kind": c.kind, "a": estimate(c.a),
            "b": estimate(c.b), "difference": _round(c.difference, 6),
            "p_value": _round(c.p_value, 6), "significant": c.significant, "test": c.test}


def flat_rows(prefix: tuple[str, ...], data: dict[str, Any]) -> Iterable[tuple[Any, ...]]:
    """A figures_dict as (path..., figure, value) rows: the CSV's long format."""
    for name, value in data.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                yield (*prefix, f"{name}.{sub}", inner)
        else:
            yield (*prefix, name, value)
