import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.rollups import rollups_rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the dashboards' daily rollups from the facts: the last --days days, or every "
        "day since the first conversation. Beat refreshes changed days every minute; run this "
        "after a bulk load, a change of TIME_ZONE, or to repair. Safe to run again."
    )

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--days", type=int, help="only the last N days, today included")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        if options["days"] is not None and options["days"] < 1:
            raise CommandError("--days must be 1 or more")
        bar = tqdm(unit=" days", disable=options["no_progress"], file=sys.stderr,
                   desc="rebuild dashboard rollups")

        def start(total: int) -> None:
            bar.total = total
            bar.refresh()

        with bar:
            days = rollups_rebuild(days=options["days"], on_start=start,
                                   on_progress=lambda _day: bar.update(1))
        span = f"{days[0]} to {days[-1]}" if days else "none"
        self.stdout.write(f"rebuilt {len(days)} days ({span})")
