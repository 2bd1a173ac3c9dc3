import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from conversations.models import Conversation
from handoffs.rebuild import handoffs_rebuild
from handoffs.sweep import handoffs_sweep


class Command(BaseCommand):
    help = (
        "Replay conversations' messages and events through the handoff machine again, "
        "after a change to the machine or the SLA defaults: their handoffs, transition "
        "logs, waits and handoff flags are rebuilt (flag statuses set by people are lost "
        "for the rebuilt flags), then a sweep raises what is due now."
    )

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--conversation", type=int, action="append",
                            help="only this conversation id (repeatable)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        ids = options["conversation"]
        total = len(ids) if ids else Conversation.objects.count()
        with tqdm(total=total, unit="conversation", disable=options["no_progress"],
                  file=sys.stderr) as bar:
            count = handoffs_rebuild(conversation_ids=ids, on_progress=bar.update)
        swept = handoffs_sweep()
        kept = total - count
        self.stdout.write(
            f"rebuilt {count} conversations"
            + (f" ({kept} left as they were: text purged by retention)" if kept else "")
            + f"; sweep: {swept.stalled} stalled, {swept.window_expired} whatsapp windows expired"
        )
