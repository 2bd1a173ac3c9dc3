"""Fill the QA review queues now (what the beat task does every 15 minutes)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.qa_models import ReviewQueue
from audit.qa_queues import queues_fill


class Command(BaseCommand):
    help = "Add the conversations matching each active QA queue's rules (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", help="queue names (default: every active queue)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        queues = ReviewQueue.objects.filter(active=True)
        if options["names"]:
            queues = ReviewQueue.objects.filter(name__in=options["names"])
            missing = set(options["names"]) - set(queues.values_list("name", flat=True))
            if missing:
                raise CommandError(f"No queue named {', '.join(sorted(missing))}.")
        bars: dict[int, tqdm] = {}

        def progress(queue: ReviewQueue, done: int, total: int) -> None:
            if options["no_progress"]:
                return
            bar = bars.get(queue.pk)
            if bar is None:
                bar = bars[queue.pk] = tqdm(total=total, desc=queue.name, unit="conv",
                                            file=self.stderr._out)
            bar.update(done - bar.n)

        added = queues_fill(queues=list(queues), progress=progress)
        for bar in bars.values():
            bar.close()
        failed = {name: n for name, n in added.items() if isinstance(n, str)}
        for name, n in added.items():
            if name not in failed:
                self.stdout.write(f"{name}: {n} added")
        for name, error in failed.items():
            self.stderr.write(f"{name}: {error}")
        if failed:
            raise CommandError(f"{len(failed)} queue(s) could not be filled: "
                               f"{', '.join(sorted(failed))}.")
