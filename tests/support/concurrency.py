"""Calls released together by a barrier, and how many of them really overlapped."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class Timed:
    result: Any
    started: float
    finished: float


def all_at_once(calls: list[Callable[[], Any]]) -> list[Timed]:
    """Run every call in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Timed:
        barrier.wait(timeout=30)
        started = time.monotonic()
        result = call()
        return Timed(result, started, time.monotonic())

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result() for f in [pool.submit(run, call) for call in calls]]


def overlapping(timings: list[Timed]) -> int:
    """How many of the calls were in flight at the moment the last one started."""
    last_start = max(t.started for t in timings)
    return sum(1 for t in timings if t.finished > last_start)
