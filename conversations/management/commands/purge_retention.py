import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from conversations.retention import (
    RetentionNotConfigured,
    retention_candidates,
    retention_cutoff,
    retention_purge,
)


class Command(BaseCommand):
    help = (
        "Purge raw events and message content older than the retention period "
        "(HANDOFF_AUDITOR['RETENTION_DAYS'] or --days). Conversations, messages' times and "
        "statuses, handoffs, flags, scores and aggregates stay. Idempotent and resumable."
    )

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--days", type=int, help="override RETENTION_DAYS")
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        try:
            cutoff = retention_cutoff(days=options["days"])
        except RetentionNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        candidates = retention_candidates(cutoff=cutoff)
        if options["dry_run"]:
            self.stdout.write(f"would purge content older than {cutoff:%Y-%m-%d %H:%M} UTC:")
            for part, count in candidates.items():
                self.stdout.write(f"  {part}: {count}")
            return
        with tqdm(total=sum(candidates.values()), unit="row", file=sys.stderr,
                  disable=options["no_progress"]) as bar:
            result = retention_purge(
                cutoff=cutoff, batch_size=options["batch_size"],
                on_progress=lambda part, n: (bar.set_description(part), bar.update(n)),
            )
        done = ", ".join(f"{n} {part.replace('_', ' ')}" for part, n in result.counts.items())
        self.stdout.write(f"purged content older than {cutoff:%Y-%m-%d %H:%M} UTC: {done}")
