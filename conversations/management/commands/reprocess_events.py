import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from conversations.applier import raw_events_reprocess
from conversations.selectors import raw_events_for_reprocessing


class Command(BaseCommand):
    help = (
        "Queue stored raw events to the applier again (failed ones by default) and apply "
        "them, in arrival order. Idempotent: rows that already exist are found, not "
        "duplicated. Use after fixing a parser."
    )

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--all", action="store_true", help="also reprocess processed events")
        parser.add_argument("--provider", help="only this provider (twilio, events, ...)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        qs = raw_events_for_reprocessing(
            include_processed=options["all"], provider=options["provider"]
        )
        total = qs.count()
        with tqdm(
            total=total, unit="event", disable=options["no_progress"], file=sys.stderr
        ) as bar:
            counts = raw_events_reprocess(
                raw_events=qs.iterator(chunk_size=1000), on_progress=bar.update
            )
        self.stdout.write(
            f"reprocessed {total} raw events: {counts['processed']} processed, "
            f"{counts['failed']} failed"
        )
