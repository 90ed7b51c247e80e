"""Which of the Procfile's processes this one is, read from its command line.

Each process may connect to RabbitMQ as a user of its own (BROKER_URL_<PROCESS>) and to
PostgreSQL as a role of its own (DATABASE_URL_<PROCESS>), config/settings.py. The command
line is what every way of starting them already sets (the Procfile, docker-compose.yml,
honcho, a platform's dyno), so nothing else has to; PROCESS_ROLE overrides it.
"""

from pathlib import Path

# Every process with a broker user of its own (messaging/broker_users.py).
PROCESSES = ("web", "worker", "webhooks", "relay", "deadletters", "beat", "release")
# Those with a database role of their own (database_roles/grants.py): beat opens no database
# connection, and the release phase is the owner that migrates (DATABASE_URL).
DATABASE_PROCESSES = ("web", "worker", "webhooks", "relay", "deadletters")
# manage.py commands that are a Procfile process (or act as one on the broker)
COMMANDS = {
    "runserver": "web",
    "relay_outbox": "relay",
    "consume_dead_letters": "deadletters",
    "release": "release",
    "setup_broker": "release",  # the release phase's broker half, run by hand
}


def process_of(argv: list[str]) -> str | None:
    """The Procfile process `argv` starts ("web", "worker", ...), or None for anything else
    (a shell, an operator's command, `celery inspect`, the tests)."""
    if not argv:
        return None
    program = Path(argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.name
    args = argv[1:]
    if name == "gunicorn":
        return "web"
    if name in {"manage.py", "django-admin"}:
        return COMMANDS.get(args[0]) if args else None
    if name == "celery" and "beat" in args:
        return "beat"
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
