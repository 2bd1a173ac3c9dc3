"""The demo's figures built before `make run` says it is ready: every demo message scored,
the tone aggregates of the days the demo spans, and the dashboards' daily rollups, so no
tile shows "0 scored" or an empty chart on the first visit (beat keeps them fresh after)."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from audit.rollups import rollups_refresh
from scoring.selectors import message_ids_to_score
from scoring.services import messages_score, scorer_set_current, scores_daily_refresh

DAYS = 21  # the demo spreads its journeys over the last two weeks, plus margin
BATCH = 200


def demo_figures_build(*, say: Callable[[str], Any] = lambda _: None) -> dict[str, int]:
    ids = message_ids_to_score(tone=scorer_set_current())
    for start in range(0, len(ids), BATCH):
        messages_score(message_ids=ids[start:start + BATCH])
        say(f"  scored {min(start + BATCH, len(ids))}/{len(ids)} messages")
    today = timezone.now().date()
    aggregates = sum(scores_daily_refresh(day=today - timedelta(days=back))
                     for back in range(DAYS))
    days = rollups_refresh()
    return {"scored": len(ids), "aggregates": aggregates, "days": len(days)}
