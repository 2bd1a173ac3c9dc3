import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from conversations.applier import raw_events_apply
from conversations.models import RawEvent


class Command(BaseCommand):
    help = (
        "Apply pending raw events now, batch after batch, until none is left (what the "
        "Celery task apply_raw_events does; use it where no worker runs, or to drain a "
        "backlog by hand). Safe beside running appliers."
    )

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--batch-size", type=int, help="raw events per transaction")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        total = RawEvent.objects.filter(status=RawEvent.Status.PENDING).count()
        with tqdm(total=total, unit="event", disable=options["no_progress"],
                  file=sys.stderr) as bar:
            counts = raw_events_apply(batch_size=options["batch_size"],
                                      on_batch=lambda c: bar.update(c.applied))
        self.stdout.write(
            f"applied {counts.applied} raw events in {counts.batches} batches: "
            f"{counts.processed} processed, {counts.failed} failed"
            + (f"; {counts.deferred} left pending ({counts.errors[-1]})" if counts.deferred
               else "")
        )
