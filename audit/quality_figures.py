"""Answer-quality rates on the dashboards (issue 16): for each answer-quality flag kind,
the share of conversations flagged, by channel, AI model and prompt version.

Definitions (docs/answer-quality.md says them too):
- the **conversations** of a group are those started in the period in which the AI took
  part (an AI message or an AI step) — for a model or prompt version, those in which that
  release took a step (a conversation counts under every release that did);
- a conversation is **flagged** with a kind when it has a flag of that kind, whatever its
  status (the inbox's flag filter shows the same). For a model or prompt version, a flag
  on an AI message counts for the releases of the steps that produced the message; a
  flag on anything else (a customer message's prompt_injection, a blocked answer's
  guardrail) counts for every release of the conversation;
- the **rate** is flagged / conversations; flagged conversations are always among the
  group's conversations, so no rate passes 100%.

Read from the daily rollup `QualityDaily`, built with the other dashboard rollups
(audit.rollups.rollup_day_build, on the days conversations.dashboard_marks marks: a flag
raised by ingest marks its conversation's start day with its batch)."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db.models import Exists, OuterRef, Q

from conversations.models import AIStep, AuthorKind, Conversation, Flag, Message

from .dashboard_selectors import Period, inbox_link
from .quality_models import QualityDaily

QUALITY_KINDS = [
    Flag.Kind.UNGROUNDED_ANSWER, Flag.Kind.WEAK_RETRIEVAL, Flag.Kind.TOOL_FAILURE,
    Flag.Kind.GUARDRAIL_TRIPPED, Flag.Kind.PROMPT_INJECTION, Flag.Kind.INJECTION_FOLLOWED,
    Flag.Kind.AI_LOOP, Flag.Kind.EXCESSIVE_AGENCY,
]
QUALITY_KIND_VALUES = [k.value for k in QUALITY_KINDS]
DIMENSIONS = ("channel", "model", "prompt")


def _model(response: str, request: str) -> str:
    return response or request  # dashboard_selectors.MODEL_SQL's rule


def quality_day_rows(day: date) -> list[QualityDaily]:
    """The QualityDaily rows of one day: three queries (the day's conversations in which
    the AI took part, their steps' releases, their answer-quality flags)."""
    period = Period(days=1, first=day, last=day)
    ai = Q(Exists(Message.objects.filter(conversation=OuterRef("pk"),
                                         author_kind=AuthorKind.AI))) \
        | Q(Exists(AIStep.objects.filter(conversation=OuterRef("pk"))))
    channel_of = dict(Conversation.objects.filter(
        ai, started_at__gte=period.since, started_at__lt=period.until).values_list("pk",
                                                                                  "channel"))
    if not channel_of:
        return []
    # Releases per conversation and per message that a step produced.
    by_conversation: dict[int, set[tuple[str, str]]] = defaultdict(set)
    by_message: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for cid, mid, response, request, prompt in AIStep.objects.filter(
            conversation_id__in=channel_of).values_list(
            "conversation_id", "message_id", "response_model", "request_model",
            "prompt_version"):
        releases = {(d, r) for d, r in (("model", _model(response, request)),
                                         ("prompt", prompt)) if r}
        by_conversation[cid] |= releases
        if mid is not None:
            by_message[mid] |= releases
    # (group key) -> kind -> flagged conversation ids
    flagged: dict[tuple[str, str, str], dict[str, set[int]]] = defaultdict(
        lambda: defaultdict(set))
    for cid, kind, subject_type, subject_id in Flag.objects.filter(
            conversation_id__in=channel_of, kind__in=QUALITY_KIND_VALUES).values_list(
            "conversation_id", "kind", "subject_type", "subject_id"):
        channel = channel_of[cid]
        flagged[channel, "channel", ""][kind].add(cid)
        releases = (by_message.get(subject_id) if subject_type == Flag.SubjectType.MESSAGE
                    else None) or by_conversation.get(cid, set())
        for dimension, release in releases:
            flagged[channel, dimension, release][kind].add(cid)
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for cid, channel in channel_of.items():
        counts[channel, "channel", ""] += 1
        for dimension, release in by_conversation.get(cid, ()):
            counts[channel, dimension, release] += 1
    return [QualityDaily(day=day, channel=channel, dimension=dimension, release=release,
                         conversations=n,
                         flagged={k: len(ids) for k, ids in
                                  sorted(flagged.get((channel, dimension, release), {}).items())})
            for (channel, dimension, release), n in sorted(counts.items())]


# --- reading ---------------------------------------------------------------------------------


@dataclass
class KindRate:
    kind: str
    flagged: int
    conversations: int
    link: str = ""

    @property
    def rate(self) -> float | None:
        return self.flagged / self.conversations if self.conversations else None


@dataclass
class QualityGroup:
    dimension: str
    key: str
    conversations: int = 0
    flagged: dict[str, int] = field(default_factory=dict)
    kinds: list[KindRate] = field(default_factory=list)


@dataclass
class QualityFigures:
    period: Period
    groups: dict[str, list[QualityGroup]]  # dimension -> groups, largest first
    kinds: list[str]  # the kinds that were raised at all, in QUALITY_KINDS order


_FILTER = {"channel": "channel", "model": "model", "prompt": "prompt_version"}


def quality_figures(*, period: Period, links: bool = True) -> QualityFigures:
    """Every answer-quality rate of the period (and channel), from the daily rollup: one
    query, one row per day x channel x release."""
    mine: dict[str, Any] = {"day__gte": period.first, "day__lte": period.last}
    if period.channel:
        mine["channel"] = period.channel
    groups: dict[tuple[str, str], QualityGroup] = {}
    for dimension, channel, release, n, flagged in QualityDaily.objects.filter(
            **mine).values_list("dimension", "channel", "release", "conversations", "flagged"):
        key = channel if dimension == "channel" else release
        group = groups.setdefault((dimension, key), QualityGroup(dimension, key))
        group.conversations += n
        for kind, count in flagged.items():
            group.flagged[kind] = group.flagged.get(kind, 0) + count
    raised = [k for k in QUALITY_KIND_VALUES if any(g.flagged.get(k) for g in groups.values())]
    for (dimension, key), group in groups.items():
        for kind in QUALITY_KIND_VALUES:
            link = inbox_link(period, flag_kind=kind, dates="started",
                              **{_FILTER[dimension]: key}) if links else ""
            group.kinds.append(KindRate(kind, group.flagged.get(kind, 0), group.conversations,
                                        link))
    return QualityFigures(period=period, kinds=raised, groups={
        d: sorted((g for (dim, _), g in groups.items() if dim == d),
                  key=lambda g: (-g.conversations, g.key)) for d in DIMENSIONS})


def quality_dict(figures: QualityFigures) -> dict[str, Any]:
    """The API's answer (GET /api/metrics/quality/)."""
    return {
        "since": figures.period.first, "until": figures.period.last,
        "channel": figures.period.channel or None,
        **{f"by_{d}": [{"key": g.key, "conversations": g.conversations,
                        "kinds": {k.kind: {"flagged": k.flagged, "rate": k.rate}
                                  for k in g.kinds}}
                       for g in figures.groups[d]] for d in DIMENSIONS},
    }


_CAPTIONS = {"channel": ("Answer quality by channel", "Channel"),
             "model": ("Answer quality by AI model", "Model"),
             "prompt": ("Answer quality by prompt version", "Prompt version")}


def quality_tables(figures: QualityFigures) -> list[Any]:
    """The dashboards' three answer-quality tables: a column per kind raised in the
    period, each rate linking to the inbox's conversations of that group and kind."""
    from .dashboard_charts import Cell, Table, pct  # the page's table shapes

    labels = {k: Flag.Kind(k).label for k in figures.kinds}
    tables = []
    for dimension in DIMENSIONS:
        caption, head = _CAPTIONS[dimension]
        table = Table(caption, [head, "Conversations", *labels.values()],
                      empty="No answer-quality flags in the period." if not figures.kinds
                      else "No AI steps with this information in the period.")
        if figures.kinds:
            for group in figures.groups[dimension]:
                rates = {k.kind: k for k in group.kinds}
                table.rows.append([
                    Cell(group.key or "—"), Cell(str(group.conversations)),
                    *[Cell(pct(rates[k].rate), rates[k].link,
                           f"{rates[k].flagged} of {rates[k].conversations}")
                      for k in figures.kinds]])
        tables.append(table)
    return tables
