from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.api.services import api_token_issue


class Command(BaseCommand):
    help = (
        "Print a user's REST API token (made if the user has none), for "
        "`Authorization: Token <key>`. What the token may read is the user's role's."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true",
                            help="Replace the user's token: the old one stops working.")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["username"]})
        except User.DoesNotExist as exc:
            raise CommandError(f"no user {options['username']!r}") from exc
        self.stdout.write(api_token_issue(user=user, rotate=options["rotate"]))
