"""What went wrong, in the groups the Today page shows and the inbox filters by.

Each problem is one condition on flags (a kind, and for handoff_dropped the reasons in its
evidence), written once here: the Today page counts conversations through the inbox's own
queryset with `problem=<key>`, so a group's figure is the number of rows its link shows.
"""

from dataclasses import dataclass

from django.db.models import Q

from conversations.flag_text import flag_kind_label
from conversations.models import Flag

STALLED, DROPPED, MISSED = (Flag.Kind.HANDOFF_STALLED, Flag.Kind.HANDOFF_DROPPED,
                            Flag.Kind.HANDOFF_MISSED)
HANDOFF_KINDS = (STALLED, DROPPED, MISSED)
ANY_HANDOFF = "handoff"  # the inbox's "any handoff problem"


@dataclass(frozen=True)
class Problem:
    key: str
    label: str
    kind: str
    reasons: tuple[str, ...] = ()  # handoff_dropped: any of these reasons
    handoff: bool = True

    def q(self, prefix: str = "") -> Q:
        """Flags of this problem (`prefix`: the path to the flag, e.g. "flags__")."""
        q = Q(**{f"{prefix}kind": self.kind})
        if self.reasons:
            any_reason = Q()
            for reason in self.reasons:
                any_reason |= Q(**{f"{prefix}evidence__details__has_key": reason})
            q &= any_reason
        return q


HANDOFF_PROBLEMS = (
    Problem("closed_before_human", "Closed before a human replied", DROPPED,
            ("closed_before_human", "resolved_before_human")),
    Problem("sla", "Waited longer than the SLA", STALLED),
    Problem("missed", "Customer asked for a person and the AI kept going", MISSED),
    Problem("ai_after_handoff", "AI kept answering after handing over", DROPPED,
            ("ai_kept_answering",)),
    Problem("window", "WhatsApp window expired while waiting", DROPPED,
            ("whatsapp_window_expired",)),
)


def problems_all() -> list[Problem]:
    """The handoff problems, then one group per other flag kind (read at call time, so
    kinds added to Flag.Kind appear without a change here)."""
    others = [Problem(kind, flag_kind_label(kind), kind, handoff=False)
              for kind in Flag.Kind.values if kind not in HANDOFF_KINDS]
    return [*HANDOFF_PROBLEMS, *others]


def problem_choices() -> list[tuple[str, str]]:
    return [("", "any"), (ANY_HANDOFF, "any handoff problem"),
            *[(p.key, p.label) for p in problems_all()]]


def problem_q(key: str, prefix: str = "") -> Q | None:
    """The flags of a problem key (ANY_HANDOFF: every handoff kind); None if unknown."""
    if key == ANY_HANDOFF:
        return Q(**{f"{prefix}kind__in": HANDOFF_KINDS})
    problem = next((p for p in problems_all() if p.key == key), None)
    return problem.q(prefix) if problem else None
