import sys
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from handoffs.sweep import handoffs_sweep


class Command(BaseCommand):
    help = (
        "Raise handoff_stalled for waits past their SLA deadline and handoff_dropped for "
        "WhatsApp handoffs whose 24-hour window closed while the customer waited. The same "
        "work Celery beat does every HANDOFF_SWEEP_SECONDS; safe to run at any time."
    )

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--now", help="sweep as of this ISO 8601 instant (default: now)")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        now = None
        if options["now"]:
            try:
                now = datetime.fromisoformat(options["now"])
            except ValueError as exc:
                raise CommandError(f"--now: {exc}") from exc
            if now.tzinfo is None:
                raise CommandError("--now needs an offset, e.g. 2026-11-22T10:00:00+00:00")
        with tqdm(unit=" due", disable=options["no_progress"], file=sys.stderr) as bar:

            def progress(result):  # noqa: ANN001, ANN202
                bar.n = result.stalled + result.window_expired
                bar.refresh()

            result = handoffs_sweep(now=now, batch_size=options["batch_size"], on_progress=progress)
        states = ", ".join(f"{k} {v}" for k, v in sorted(result.by_state.items())) or "none"
        self.stdout.write(
            f"stalled: {result.stalled} ({states}); whatsapp window expired: "
            f"{result.window_expired}; flags created {result.flags_created}, "
            f"refreshed {result.flags_refreshed}"
        )
