from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels.models import OTLPToken
from channels.tokens import otlp_token_issue, otlp_tokens_revoke


class Command(BaseCommand):
    help = ("Bearer tokens for POST /hooks/otlp/v1/traces, per sender: `issue SENDER` "
            "prints a new one (older ones keep working), `revoke SENDER [--prefix P]`, `list`.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["issue", "revoke", "list"])
        parser.add_argument("sender", nargs="?", default="")
        parser.add_argument("--prefix", default="",
                            help="revoke only the token starting with this (see `list`)")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        action, sender = options["action"], options["sender"]
        if action == "list":
            for t in OTLPToken.objects.order_by("sender", "created_at"):
                state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
                used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "unused"
                self.stdout.write(f"{t.sender}\t{t.prefix}…\t{state}\t{used}")
            return
        if not sender:
            raise CommandError(f"`otlp_token {action}` needs a sender name")
        if action == "issue":
            self.stdout.write(otlp_token_issue(sender=sender))
        else:
            count = otlp_tokens_revoke(sender=sender, prefix=options["prefix"])
            self.stdout.write(f"{count} token(s) revoked for {sender}")
