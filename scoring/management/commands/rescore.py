import sys
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from conversations.conf import auditor_settings
from conversations.models import Channel
from scoring.models import BrandVoice
from scoring.selectors import message_ids_to_score
from scoring.services import message_ids_enqueue, messages_score, scorer_set_current


class Command(BaseCommand):
    help = (
        "Score messages again with the current brand voice and scorers (after a brand-voice "
        "change). Idempotent: each scorer overwrites its own Score rows; open flags are "
        "refreshed, not duplicated."
    )

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--brand", help="only conversations of this brand (its name)")
        parser.add_argument("--channel", choices=Channel.values, help="only this channel")
        parser.add_argument("--since", help="only messages sent on or after this date "
                            "(YYYY-MM-DD, UTC)")
        parser.add_argument("--missing", action="store_true",
                            help="only messages lacking scores from the current scorers")
        parser.add_argument("--queue", action="store_true",
                            help="queue Celery tasks instead of scoring in this process")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        brand = None
        if options["brand"]:
            brand = BrandVoice.objects.filter(name=options["brand"]).first()
            if brand is None:
                raise CommandError(f"no brand voice named {options['brand']!r}")
        since = None
        if options["since"]:
            try:
                since = datetime.strptime(options["since"], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError as exc:
                raise CommandError("--since takes YYYY-MM-DD") from exc
        ids = message_ids_to_score(
            tone=scorer_set_current(), since=since, brand=brand, channel=options["channel"],
            current_only=options["missing"],
        )
        size = auditor_settings.SCORING_BATCH_SIZE
        if options["queue"]:
            tasks = message_ids_enqueue(message_ids=ids)
            self.stdout.write(f"queued {len(ids)} messages in {tasks} tasks")
            return
        with tqdm(total=len(ids), unit="msg", disable=options["no_progress"],
                  file=sys.stderr) as bar:
            for i in range(0, len(ids), size):
                bar.update(messages_score(message_ids=ids[i:i + size]))
        self.stdout.write(f"rescored {len(ids)} messages")
