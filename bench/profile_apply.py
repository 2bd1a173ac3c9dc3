"""Where the applier's time goes: drain what is pending in the bench database in this
process (conversations.applier.raw_events_apply, as `manage.py apply_events` does) under
pyinstrument, and print

- wall time by area: the self time of every sampled frame, grouped by where its code lives
  (our apps, Django's ORM, psycopg, i.e. waiting on PostgreSQL, ...);
- the inclusive time of our own functions (each counted once per stack), the top ones;
- pyinstrument's call tree down to 1.5% of the time (bench/profile-apply.html has it all).

Run by bench/events.py (BENCH_PROFILE=1, the default) with the bench's environment
(DATABASE_URL, DJANGO_SETTINGS_MODULE=bench_settings). pyinstrument is on PyPI; `make
bench-events` installs it into the venv.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("conversations", "handoffs", "channels", "scoring", "alerts", "audit", "demo")


def area(path: str) -> str:
    """Where a frame's code lives, in a few words."""
    p = path.replace("\\", "/")
    if p.startswith(str(ROOT)) and "/.venv/" not in p:
        top = p[len(str(ROOT)) + 1:].split("/", 1)[0]
        return f"ours: {top}" if top in OURS else f"ours: {top} (other)"
    for marker, name in (("/psycopg/", "psycopg (waiting on PostgreSQL, adapting)"),
                         ("/django/db/models/sql/", "Django ORM: SQL compiler"),
                         ("/django/db/models/", "Django ORM: models, querysets"),
                         ("/django/db/", "Django: database layer"),
                         ("/django/", "Django: other"),
                         ("/kombu/", "Celery/kombu (queueing scoring)"),
                         ("/celery/", "Celery/kombu (queueing scoring)"),
                         ("/redis/", "Celery/kombu (queueing scoring)"),
                         ("/json/", "json"), ("/zoneinfo/", "zoneinfo"),
                         ("/dateutil/", "dateutil")):
        if marker in p:
            return name
    if "/lib/python3" in p and "site-packages" not in p:
        return "Python stdlib"
    return "other libraries" if p else "(native / unknown)"


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")
    import django

    django.setup()
    from pyinstrument import Profiler

    from conversations.applier import raw_events_apply, raw_events_apply_batch

    # One batch first, unprofiled: imports and first-use caches are not the steady state.
    raw_events_apply_batch()
    limit = float(os.environ.get("BENCH_PROFILE_SECONDS", "60"))
    profiler = Profiler(interval=0.002)
    started = time.monotonic()
    profiler.start()
    counts = raw_events_apply(max_seconds=limit)
    profiler.stop()
    wall = time.monotonic() - started
    events = max(counts.applied, 1)
    print(f"profiled: {counts.applied} raw events in {counts.batches} batches, {wall:.1f} s "
          f"wall ({counts.applied / wall:,.0f} events/s under the profiler; "
          f"{wall / events * 1000:.2f} ms wall per event)")
    if profiler.last_session is not None:
        cpu = profiler.last_session.cpu_time
        print(f"this process's CPU: {cpu:.1f} s ({cpu / events * 1000:.2f} ms per event); the "
              f"rest of the wall time is waiting, mostly on PostgreSQL")

    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    assert root is not None
    by_area: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)

    def walk(frame, stack: frozenset[str]) -> None:  # noqa: ANN001 - pyinstrument's Frame
        if frame.is_synthetic:  # "[self]" leaves: already in their parent's total_self_time
            return
        path = frame.file_path or ""
        by_area[area(path)] += frame.total_self_time
        name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        mine = path.startswith(str(ROOT)) and "/.venv/" not in path
        if mine and name not in stack:
            inclusive[name] += frame.time
            stack = stack | {name}
        for child in frame.children:
            walk(child, stack)

    walk(root, frozenset())
    total = sum(by_area.values()) or 1.0
    print("\nwall time by area (self time of the sampled frames):")
    for name, sec in sorted(by_area.items(), key=lambda kv: -kv[1]):
        if sec / total >= 0.005:
            print(f"  {sec / total * 100:5.1f}%  {sec / events * 1000:6.3f} ms/event  {name}")
    print("\nour functions, inclusive wall time (top 30):")
    for name, sec in sorted(inclusive.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {sec / total * 100:5.1f}%  {sec / events * 1000:6.3f} ms/event  {name}")
    html = Path(__file__).with_name("profile-apply.html")
    html.write_text(profiler.output_html(), encoding="utf-8")
    print("\ncall tree (frames >= 1.5%; the whole tree: bench/profile-apply.html):")
    text = profiler.output_text(unicode=False, color=False, show_all=False,
                                processor_options={"filter_threshold": 0.015})
    print("\n".join(text.splitlines()[:90]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
