"""QA results (issue 17): what reviewers keep marking down, and for whom. Pass rates per
scorecard and per category, the weakest categories, per agent / channel / AI model / prompt
version, critical-category failures, the trend per week, and the gap between automated
scores and reviewers' answers per category.

Read from the submitted reviews of the conversations started in the period (QA reviews are
written by people: thousands, not millions, so no rollup is needed), in a fixed number of
queries: answers, the conversations' agents, their AI releases, the auto/human pairs.
The reviews and answers counted, and what fails, are scoring.qa_counted's (a reviewer's
latest review of a conversation per scorecard; the inbox's QA filters use the same), so
each figure's drill-down lists exactly the conversations it counted.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from conversations.models import AIStep
from scoring.qa import answer_fails, answer_normalize
from scoring.qa_counted import answers_counted, reviews_counted
from scoring.qa_selectors import qa_auto_human_gap

from .dashboard_selectors import Period
from .outcome_rules import conversation_agents

WEAKEST_N = 5
CRITICAL_LIST_N = 20


@dataclass
class PassFigures:
    key: str
    label: str = ""
    n: int = 0  # answers (categories) or reviews (groups)
    failed: int = 0
    score_sum: float = 0.0  # 0-1 answers, or 0-100 review scores
    scored: int = 0
    critical: bool = False
    conversations: set[int] = field(default_factory=set)
    failed_conversations: set[int] = field(default_factory=set)
    # A category of weight 0 records an answer without scoring it ("Handoff needed?"): its
    # "no" is not a failure, so it has no pass rate and is never among the weakest.
    scored_category: bool = True

    @property
    def pass_rate(self) -> float | None:
        return (self.n - self.failed) / self.n if self.n and self.scored_category else None

    @property
    def mean(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None


@dataclass
class QAResults:
    period: Period
    reviews: PassFigures
    scorecards: list[PassFigures]
    categories: list[PassFigures]  # per (scorecard, category key)
    weakest: list[PassFigures]
    groups: dict[str, list[PassFigures]]  # agent, channel, model, prompt -> rows
    critical_failures: list[dict[str, Any]]  # the latest, newest first
    critical_by_category: list[PassFigures]
    weeks: list[PassFigures]  # Monday of each week of the period
    gap: list[dict[str, Any]]

    def as_rows(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """Every figure as (group, figures) for the CSV."""
        def row(f: PassFigures) -> dict[str, Any]:
            return {"key": f.key, "label": f.label, "n": f.n, "failed": f.failed,
                    "pass_rate": None if f.pass_rate is None else round(f.pass_rate, 4),
                    "mean": None if f.mean is None else round(f.mean, 4)}

        yield "reviews", row(self.reviews)
        for name, rows in (("scorecard", self.scorecards), ("category", self.categories),
                           ("weakest", self.weakest), ("critical", self.critical_by_category),
                           ("week", self.weeks)):
            for f in rows:
                yield name, row(f)
        for kind, rows in self.groups.items():
            for f in rows:
                yield kind, row(f)
        for g in self.gap:
            yield "auto_vs_human", {"key": f"{g['auto']}~{g['human']}", **{
                k: g[k] for k in ("n", "auto_mean", "human_mean", "gap")}}


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def qa_results(*, period: Period) -> QAResults:
    started = {"review__conversation__started_at__gte": period.since,
               "review__conversation__started_at__lt": period.until}
    if period.channel:
        started["review__conversation__channel"] = period.channel
    rows = answers_counted().filter(
        review__in=reviews_counted(), **started,
    ).order_by("review__submitted_at", "review_id").values_list(
        "review_id", "review__reviewer_id", "review__conversation_id",
        "review__conversation__channel", "review__conversation__started_at",
        "review__version__scorecard__key", "review__version__scorecard__name",
        "review__score_100", "review__failed", "category__key", "category__label",
        "category__scale", "category__critical", "value", "category__weight")
    reviews: dict[int, tuple[Any, ...]] = {r[0]: r for r in rows}
    answers = list(rows)
    conversations = {r[2] for r in reviews.values()}
    # An agent's conversations as the reports and the inbox's `agent=` define them.
    agents: dict[int, set[str]] = defaultdict(set)
    names: dict[str, str] = {}
    for cid, agent, name in conversation_agents(id__in=conversations):
        agents[cid].add(agent)
        names[agent] = names.get(agent) or name
    models: dict[int, set[str]] = defaultdict(set)
    prompts: dict[int, set[str]] = defaultdict(set)
    for cid, request, response, prompt in AIStep.objects.filter(
            conversation_id__in=conversations).values_list(
            "conversation_id", "request_model", "response_model", "prompt_version"):
        if response or request:
            models[cid].add(response or request)
        if prompt:
            prompts[cid].add(prompt)

    total = PassFigures("all")
    cards: dict[str, PassFigures] = {}
    groups: dict[str, dict[str, PassFigures]] = {k: {} for k in (
        "agent", "channel", "model", "prompt")}
    weeks = {_monday(period.first) + timedelta(weeks=i): None for i in range(
        (_monday(period.last) - _monday(period.first)).days // 7 + 1)}
    week_rows = {w: PassFigures(w.isoformat()) for w in weeks}
    for (_, _, cid, channel, started_at, card, card_name, score, failed, *_rest) in \
            reviews.values():
        targets = [total, cards.setdefault(card, PassFigures(card, card_name))]
        for kind, keys in (("agent", agents[cid]), ("channel", {channel}),
                           ("model", models[cid]), ("prompt", prompts[cid])):
            targets += [groups[kind].setdefault(k, PassFigures(
                k, names.get(k, "") if kind == "agent" else "")) for k in keys]
        week = _monday(started_at.astimezone(period.since.tzinfo).date())
        if week in week_rows:
            targets.append(week_rows[week])
        for f in targets:
            f.n += 1
            f.failed += bool(failed)
            f.conversations.add(cid)
            if failed:
                f.failed_conversations.add(cid)
            if score is not None:
                f.score_sum += score
                f.scored += 1
    categories: dict[tuple[str, str], PassFigures] = {}
    critical_list = []
    for (review_id, _, cid, _, _, card, _, _, _, key, label, scale, critical,
         value, weight) in answers:
        f = categories.setdefault((card, key), PassFigures(f"{card}:{key}", label,
                                                           critical=critical,
                                                           scored_category=weight > 0))
        fails = f.scored_category and answer_fails(scale=scale, value=value)
        f.n += 1
        f.failed += fails
        if fails:
            f.failed_conversations.add(cid)
        f.score_sum += answer_normalize(scale=scale, value=value)
        f.scored += 1
        f.conversations.add(cid)
        if fails and critical:
            critical_list.append({"conversation": cid, "review": review_id,
                                  "category": key, "label": label, "scale": scale,
                                  "value": value})
    ordered = sorted(categories.values(), key=lambda f: f.key)
    weakest = sorted((f for f in ordered if f.n and f.scored_category),
                     key=lambda f: (f.pass_rate, f.mean, f.key))
    critical_by = [f for f in ordered if f.critical]
    return QAResults(
        period=period, reviews=total, scorecards=sorted(cards.values(), key=lambda f: f.key),
        categories=ordered, weakest=weakest[:WEAKEST_N],
        groups={k: sorted(v.values(), key=lambda f: (-f.n, f.key)) for k, v in groups.items()},
        critical_failures=critical_list[::-1][:CRITICAL_LIST_N],
        critical_by_category=critical_by, weeks=list(week_rows.values()),
        gap=qa_auto_human_gap(start=period.since, end=period.until),
    )
