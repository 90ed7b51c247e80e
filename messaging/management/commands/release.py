import os
import signal

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "The release phase: apply migrations, grant the processes' database roles (when "
        "DATABASE_URL_<PROCESS> are set) and declare the broker topology, then exit. "
        "Under honcho it stays up afterwards, until stopped."
    )

    def handle(self, *args, **options) -> None:
        """Migrate, grant the database roles, declare the broker topology; under honcho,
        wait to be stopped.

        The roles are granted after every migration, as the owner that just migrated: a
        table a migration added is granted to the processes that need it before they start.

        A platform's release phase (Heroku runs the Procfile's `release` line before a new
        version starts) needs the command to end. `honcho start` runs every Procfile line
        and stops them all as soon as one ends, so there the work is done and the process
        then waits: honcho sets HONCHO_PROCESS_NAME in the environment of what it runs.
        """
        call_command("migrate", interactive=False, verbosity=options["verbosity"])
        call_command("setup_database_roles", stdout=self.stdout)
        call_command("setup_broker", stdout=self.stdout)
        if not os.environ.get("HONCHO_PROCESS_NAME"):
            return
        self.stdout.write(
            "release done; staying up because honcho stops every process when one exits"
        )
        self.stdout.flush()
        stopping = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.append(True))
        while not stopping:
            signal.pause()
