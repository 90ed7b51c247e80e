from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from database_roles import services


class Command(BaseCommand):
    help = (
        "Create the database role of each process that has a DATABASE_URL_<PROCESS> and grant "
        "it exactly its privileges (database_roles/grants.py), on the owner's connection "
        "(DATABASE_URL). Safe to run again; the release phase runs it after migrating."
    )

    def handle(self, *args, **options) -> None:
        """Grant each configured process's role its privileges; say so when none is set."""
        logins = {
            process: services.Login.from_url(url)
            for process, url in settings.DATABASE_PROCESS_URLS.items()
            if url
        }
        if not logins:
            self.stdout.write("no DATABASE_URL_<PROCESS> set: every process uses DATABASE_URL")
            return
        try:
            done = services.setup_roles(logins=logins)
        except services.RoleNotSeparate as error:
            raise CommandError(error.message) from error
        for line in done:
            self.stdout.write(line)
