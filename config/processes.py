"""Which of the Procfile's processes this one is, read from its command line.

Each process may connect to PostgreSQL as a role of its own (DATABASE_URL_<PROCESS> in
config/settings.py). The command line is what every way of starting them already sets (the
Procfile, docker-compose.yml, honcho, a platform's dyno), so nothing else has to.
"""

from pathlib import Path

# The processes that may have a database role of their own (database_roles/grants.py).
# beat opens no database connection; the release phase and operators' manage.py commands
# are the owner's (DATABASE_URL).
PROCESSES = ("web", "worker", "webhooks", "relay", "deadletters")
# manage.py commands that are a Procfile process
COMMANDS = {"relay_outbox": "relay", "consume_dead_letters": "deadletters"}


def process_of(argv: list[str]) -> str | None:
    """The Procfile process `argv` starts ("web", "worker", ...), or None for anything else."""
    if not argv:
        return None
    program = Path(argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.name
    args = argv[1:]
    if name == "gunicorn":
        return "web"
    if name in {"manage.py", "django"}:
        return COMMANDS.get(args[0]) if args else None
    if name == "celery" and "worker" in args:
        return "webhooks" if _queues(args) == {"webhooks"} else "worker"
    return None


def _queues(args: list[str]) -> set[str]:
    """The queues a `celery worker` command line names (--queues / -Q); empty for none."""
    for index, arg in enumerate(args):
        for flag in ("--queues", "-Q"):
            if arg == flag and index + 1 < len(args):
                return set(args[index + 1].split(","))
            if arg.startswith(flag) and arg != flag:
                return set(arg.removeprefix(flag).removeprefix("=").split(","))
    return set()
