from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from messaging.broker_users import create_users, role_permissions, users_of


class Command(BaseCommand):
    help = (
        "Create the broker user of each role whose BROKER_URL_<ROLE> is set, with that URL's "
        "password and the role's permissions in its vhost (docs/security.md). Runs rabbitmqctl, "
        "so on a node of the broker. Safe to run again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--node", help="rabbitmqctl's -n: the broker node to administer")
        parser.add_argument(
            "--print",
            action="store_true",
            help="print each role's configure, write and read expressions; change nothing",
        )

    def handle(self, *args, node: str | None, print: bool, **options) -> None:
        publish_on_commit = settings.OUTBOX_PUBLISH_ON_COMMIT
        if print:
            for role, p in role_permissions(publish_on_commit=publish_on_commit).items():
                self.stdout.write(f"{role}\t{p.configure}\t{p.write}\t{p.read}")
            return
        try:
            users = users_of(settings.BROKER_URLS, publish_on_commit=publish_on_commit)
            if not users:
                raise CommandError("No BROKER_URL_<ROLE> is set: there is no user to create.")
            create_users(users, node=node)
        except ApplicationError as error:
            raise CommandError(error.message) from error
        for user in users:
            self.stdout.write(f"{user.role}: user {user.name} in vhost {user.vhost}")
