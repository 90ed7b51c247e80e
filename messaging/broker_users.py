"""A RabbitMQ user per process role, each allowed only its job (docs/security.md, "Broker").

RabbitMQ checks three regular expressions per user and vhost against the name of the queue or
exchange an operation touches: configure (declare, delete), write (publish to an exchange;
bind a queue, or an exchange as destination) and read (consume or get from a queue, purge it;
the exchange side of a binding). Passive declares, which the dashboard and every process but
the release use, need none of them; dead-lettering is the broker's own and needs none either.

The users are made with rabbitmqctl, on the broker's node (its Erlang cookie is the
administrator's credential): the management plugin, the other way, is not enabled everywhere.
"""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from core.errors import ApplicationError

from .topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE,
    MAINTENANCE_QUEUE,
    PARKING_EXCHANGE,
    PARKING_QUEUE,
    STEP_QUEUES,
    WEBHOOK_QUEUE,
    WORK_QUEUES,
)

NOTHING = "^$"

# Celery's native delayed delivery (kombu.transport.native_delayed_delivery): a retry with a
# countdown is published to `celery_delayed_27`; the broker moves it down the levels
# (`celery_delayed_27`..`celery_delayed_0`, an exchange and a quorum queue each) and out of
# `celery_delayed_delivery`, which is bound to every work queue's exchange.
DELAYED_ENTRY = "celery_delayed_27"
DELAYED_RESOURCES = r"celery_delayed_\d+|celery_delayed_delivery"
# A worker's remote control and events, which Celery declares itself at start: the
# `celery.pidbox` exchange and each node's `<node>.celery.pidbox` queue, the replies'
# `reply.celery.pidbox` exchange and `<id>.reply.celery.pidbox` queues, the `celeryev`
# exchange and gossip's `celeryev.<id>` queues.
CELERY_CONTROL = r"celery\.pidbox|.+\.celery\.pidbox|celeryev|celeryev\..+"

WORKER_QUEUES = (*STEP_QUEUES, MAINTENANCE_QUEUE)  # the Procfile's worker; webhooks has its own
PIPELINE_EXCHANGES = WORK_QUEUES  # each work queue's exchange has its name


class BrokerUsersError(ApplicationError):
    """The users could not be made: a URL names no user, two roles share one, rabbitmqctl failed."""


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str

    def allows(self, kind: str, resource: str) -> bool:
        """Whether RabbitMQ would allow `kind` (configure, write, read) on `resource`."""
        return re.fullmatch(getattr(self, kind), resource) is not None


def any_of(*patterns: str) -> str:
    """One anchored regular expression: exact names are escaped, `r"..."` patterns kept."""
    return "^(" + "|".join(patterns) + ")$" if patterns else NOTHING


def names(*resources: str) -> str:
    """Exact names, as alternatives for any_of()."""
    return "|".join(re.escape(resource) for resource in dict.fromkeys(resources))


def role_permissions(*, publish_on_commit: bool) -> dict[str, Permissions]:
    """The permissions of each role (settings.BROKER_ROLES) in the project's vhost.

    With OUTBOX_PUBLISH_ON_COMMIT the web process and the workers publish the outbox's
    messages themselves, right after commit: then they may write to every pipeline exchange.
    """
    pipeline = names(*PIPELINE_EXCHANGES)

    def worker(queues: tuple[str, ...]) -> Permissions:
        # A retry waits in the delayed-delivery exchanges; one with no delay left goes
        # straight to its queue's exchange.
        publishes = pipeline if publish_on_commit else names(*queues)
        return Permissions(
            configure=any_of(CELERY_CONTROL),
            write=any_of(publishes, names(DELAYED_ENTRY), CELERY_CONTROL),
            read=any_of(names(*queues), CELERY_CONTROL),
        )

    dead_letters = names(DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, PARKING_EXCHANGE, PARKING_QUEUE)
    everything = any_of(names(*WORK_QUEUES, DEAD_LETTER_QUEUE, PARKING_QUEUE), DELAYED_RESOURCES)
    return {
        # Readiness connects; the dashboard's queue depths are passive declares.
        "web": Permissions(NOTHING, any_of(pipeline) if publish_on_commit else NOTHING, NOTHING),
        "relay": Permissions(NOTHING, any_of(pipeline), NOTHING),
        "worker": worker(WORKER_QUEUES),
        "webhooks": worker((WEBHOOK_QUEUE,)),
        # Records dead letters, parks what it cannot record; `deadletters unpark` moves them
        # back. A replay goes through the outbox, published by the relay.
        "deadletters": Permissions(NOTHING, any_of(dead_letters), any_of(dead_letters)),
        "beat": Permissions(NOTHING, any_of(names(MAINTENANCE_QUEUE)), NOTHING),
        # Declares the topology, binds it to delayed delivery, and rebuilds a dead_letter queue
        # of an older release (which gets and publishes its messages).
        "release": Permissions(everything, everything, everything),
    }


@dataclass(frozen=True)
class BrokerUser:
    role: str
    name: str
    password: str
    vhost: str
    permissions: Permissions


def users_of(urls: dict[str, str], *, publish_on_commit: bool) -> list[BrokerUser]:
    """The user each role's URL names (its first node's: a cluster shares its users)."""
    permissions = role_permissions(publish_on_commit=publish_on_commit)
    users, roles_by_name = [], {}
    for role, url in urls.items():
        if not url:
            continue
        parts = urlsplit(url.split(";")[0].strip())
        name, password = unquote(parts.username or ""), unquote(parts.password or "")
        if not name or not password:
            raise BrokerUsersError(f"BROKER_URL_{role.upper()} names no user and password.")
        if name in roles_by_name:
            raise BrokerUsersError(
                f"Roles {roles_by_name[name]} and {role} share the broker user {name}: "
                "each role needs a user of its own, as their permissions differ."
            )
        roles_by_name[name] = role
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        users.append(BrokerUser(role, name, password, vhost, permissions[role]))
    return users


def create_users(users: list[BrokerUser], *, node: str | None = None) -> None:
    """Create each user (or set its password, if it exists) and set its permissions.

    Idempotent: running it again changes nothing, or what the URLs changed.
    """
    existing = {line.split("\t")[0] for line in _ctl(node, "list_users").splitlines()}
    for user in users:
        # The password as an argument: RabbitMQ 4.0's rabbitmqctl did not read it from stdin
        # when run in a node's own root (scripts/lib/rabbitmq4.sh). `ps` on the broker's node
        # shows it for the moment the command runs; run this where only operators log in.
        verb = "change_password" if user.name in existing else "add_user"
        _ctl(node, verb, user.name, user.password)
        p = user.permissions
        _ctl(node, "set_permissions", "-p", user.vhost, user.name, p.configure, p.write, p.read)


def _ctl(node: str | None, *args: str, stdin: str | None = None) -> str:
    ctl = os.environ.get("RABBITMQCTL", "rabbitmqctl")  # scripts/test.sh names its node's
    if not shutil.which(ctl):
        raise BrokerUsersError(f"{ctl} is not on PATH: run this on a node of the broker.")
    command = [ctl, "-q", *(["-n", node] if node else []), *args]
    try:
        done = subprocess.run(  # noqa: S603 - the broker's own admin tool
            command, input=stdin, capture_output=True, text=True, check=True, timeout=60
        )
    except subprocess.CalledProcessError as error:
        raise BrokerUsersError(
            f"rabbitmqctl {args[0]} failed: {error.stderr.strip() or error.stdout.strip()}"
        ) from error
    except subprocess.TimeoutExpired as error:
        raise BrokerUsersError(f"rabbitmqctl {args[0]} did not answer in 60 s") from error
    return done.stdout
