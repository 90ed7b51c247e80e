"""Django settings for Orderflow.

Everything that differs between machines comes from the environment, read in the one
block below; the defaults serve development. README.md has a row for every variable.
"""

import logging
import os
import re
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config import sentry
from config.processes import DATABASE_PROCESSES, PROCESSES, process_of
from core.logcontext import logging_config
from core.tls import amqp_ssl_options

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _rate(name: str, default: str) -> str | None:
    """A DRF throttle rate such as "600/minute" from the environment; "off" is no throttle."""
    value = env.str(name, default=default).strip()
    if value.lower() in {"", "off"}:
        return None
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate: write e.g. 600/minute, or off."
        )
    return value


# --- Environment -------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# Required in production; development gets a fixed, obviously unsafe key.
SECRET_KEY = env.str("SECRET_KEY", default="")
# Former keys, comma-separated, still accepted for what they signed (sessions, password reset
# links) while SECRET_KEY signs everything new: rotating the key logs nobody out.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# SQLite is the zero-setup default; PostgreSQL is what production and the tests use.
DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
# Each Procfile process may connect as a PostgreSQL role of its own, holding only what its
# job needs (database_roles/grants.py): DATABASE_URL_WEB, _WORKER, _WEBHOOKS, _RELAY and
# _DEADLETTERS. Unset, a process uses DATABASE_URL, the owner's, which the release phase
# migrates with and `manage.py setup_database_roles` grants from.
DATABASE_PROCESS_URLS = {
    name: env.str(f"DATABASE_URL_{name.upper()}", default="") for name in DATABASE_PROCESSES
}
# Which process this is: PROCESS_ROLE, else its command line (config/processes.py); None for
# an operator's command, a shell or the tests.
PROCESS = env.str("PROCESS_ROLE", default="") or process_of(sys.argv)
if PROCESS and PROCESS not in PROCESSES:
    raise ImproperlyConfigured(f"PROCESS_ROLE={PROCESS!r} is not one of {PROCESSES}.")
# The database this process connects to: its own role's, else the owner's.
PROCESS_DATABASE_URL = DATABASE_PROCESS_URLS.get(PROCESS) or DATABASE_URL
# Seconds a database connection is kept open between requests and tasks.
CONN_MAX_AGE = env.int("CONN_MAX_AGE", default=60)
# CloudAMQP's add-on sets CLOUDAMQP_URL; an explicit CELERY_BROKER_URL wins.
BROKER_URL_SHARED = env.str(
    "CELERY_BROKER_URL",
    default=env.str("CLOUDAMQP_URL", default="amqp://guest:guest@127.0.0.1:5672//"),
)
# A broker user per process (docs/security.md, "Broker"): BROKER_URL_<PROCESS> when set,
# else the shared URL above; `manage.py create_broker_users` creates the users they name.
BROKER_ROLES = PROCESSES
BROKER_URLS = {role: env.str(f"BROKER_URL_{role.upper()}", default="") for role in BROKER_ROLES}
CELERY_BROKER_URL = BROKER_URLS.get(PROCESS) or BROKER_URL_SHARED
if BROKER_URLS.get(PROCESS):
    # Celery takes a CELERY_BROKER_URL environment variable over the setting above, but
    # connects with the read and write URLs, which win over it: the role's own.
    CELERY_BROKER_READ_URL = CELERY_BROKER_WRITE_URL = CELERY_BROKER_URL
# TLS to the broker: an amqps:// URL is verified (certificate and host name, never neither)
# against the CAs in this PEM file, else the system's; BROKER_SSL_SERVER_NAME is the name the
# certificates must carry when the failover nodes have different names (docs/security.md, TLS).
BROKER_SSL_CA_FILE = env.str("BROKER_SSL_CA_FILE", default="")
BROKER_SSL_SERVER_NAME = env.str("BROKER_SSL_SERVER_NAME", default="")
if BROKER_SSL_CA_FILE and not Path(BROKER_SSL_CA_FILE).is_file():
    raise ImproperlyConfigured(f"BROKER_SSL_CA_FILE={BROKER_SSL_CA_FILE}: no such file.")
# Whether this process declares the queues and exchanges it uses (idempotent, but it needs the
# configure permission) or only checks, with passive declares, that the release declared them.
# On unless the process connects as its role's own user: only the release's user may configure.
BROKER_DECLARES_TOPOLOGY = env.bool(
    "BROKER_DECLARES_TOPOLOGY", default=not BROKER_URLS.get(PROCESS)
)
# HTTPS behind a Heroku-style router, which terminates TLS and sets X-Forwarded-Proto.
# Secure by default when DEBUG is off; each can be turned off (say, for plain-HTTP tests).
SECURE_PROXY_SSL_HEADER_ENABLED = env.bool("SECURE_PROXY_SSL_HEADER", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
# Subdomains and the browsers' preload list too: turn these off if a subdomain is not HTTPS.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# Seconds to wait for the broker when connecting (a publish: at most BROKER_PUBLISH_TIMEOUT).
BROKER_CONNECTION_TIMEOUT = env.float("BROKER_CONNECTION_TIMEOUT", default=2.0)
# Seconds one publish may take in all (connect, write, confirm); then it is left to the relay.
BROKER_PUBLISH_TIMEOUT = env.float("BROKER_PUBLISH_TIMEOUT", default=2.0)
# AMQP heartbeat of the workers' connections, seconds: a worker cut off from the broker is
# given up (and its unacked messages redelivered) after about twice this.
BROKER_HEARTBEAT = env.int("BROKER_HEARTBEAT", default=60)
# Publish outbox messages from the committing process right after commit. Off (the default
# on PostgreSQL): the relay alone publishes them, woken by NOTIFY at each commit, in batches,
# so no request or task waits for a broker confirm. On (the default on SQLite, which cannot
# wake the relay, so it polls).
OUTBOX_PUBLISH_ON_COMMIT = env.bool(
    "OUTBOX_PUBLISH_ON_COMMIT",
    default=env.db_url_config(PROCESS_DATABASE_URL)["ENGINE"].endswith("sqlite3"),
)
# Least seconds between two relay passes while commits keep coming: batches under load
# instead of a pass per commit; a commit after a quiet spell is published at once.
OUTBOX_RELAY_GATHER_SECONDS = env.float("OUTBOX_RELAY_GATHER_SECONDS", default=0.0)
# Returns of one message to its queue before RabbitMQ dead-letters it (x-delivery-limit).
# RabbitMQ 3.10 and 4.0 count every return, not only failures: a killed worker process, but
# also each channel or connection closed with the message unacked (a worker restart, a lost
# connection). 20, RabbitMQ 4.0's own default, lets a healthy message ride out 20 restarts
# and still stops a message that kills its worker (docs/reliability.md). Queues keep the
# limit they were declared with: changing it means recreating them (README).
BROKER_DELIVERY_LIMIT = env.int("BROKER_DELIVERY_LIMIT", default=20)
# The dead-letter consumer: tries to record one dead letter (backoff from the base, doubling,
# capped) before parking it in dead_letter_parked, and how long to wait for that park's confirm.
DEAD_LETTER_RECORD_ATTEMPTS = env.int("DEAD_LETTER_RECORD_ATTEMPTS", default=6)
DEAD_LETTER_RETRY_BASE_SECONDS = env.float("DEAD_LETTER_RETRY_BASE_SECONDS", default=0.5)
DEAD_LETTER_RETRY_MAX_SECONDS = env.float("DEAD_LETTER_RETRY_MAX_SECONDS", default=8.0)
DEAD_LETTER_PARK_CONFIRM_SECONDS = env.float("DEAD_LETTER_PARK_CONFIRM_SECONDS", default=10.0)
# Deliveries of one message from dead_letter (a consumer crashing on it) before RabbitMQ moves
# it to dead_letter_parked (x-delivery-limit of dead_letter; never left to the broker default).
DEAD_LETTER_DELIVERY_LIMIT = env.int("DEAD_LETTER_DELIVERY_LIMIT", default=10)
# Retries of a transient failure: exponential backoff from RETRY_BASE_SECONDS, capped at
# RETRY_MAX_SECONDS, with full jitter; RETRY_MAX_ATTEMPTS tries in all, then a dead letter.
RETRY_BASE_SECONDS = env.int("RETRY_BASE_SECONDS", default=2)
RETRY_MAX_SECONDS = env.int("RETRY_MAX_SECONDS", default=300)
RETRY_MAX_ATTEMPTS = env.int("RETRY_MAX_ATTEMPTS", default=8)
# Full jitter on retry delays; off only to make delays predictable (tests, demos).
RETRY_JITTER = env.bool("RETRY_JITTER", default=True)
# Fraud rules: an order total above this, or more orders than this by one buyer in an hour.
FRAUD_MAX_ORDER_AMOUNT = Decimal(env.str("FRAUD_MAX_ORDER_AMOUNT", default="10000"))
FRAUD_MAX_ORDERS_PER_HOUR = env.int("FRAUD_MAX_ORDERS_PER_HOUR", default=20)
# Billing: the gateway class (dotted path) and the fake gateway's behaviour.
BILLING_GATEWAY = env.str("BILLING_GATEWAY", default="fakegateway.gateway.FakeGateway")
BILLING_FAKE_DECLINE_OVER = Decimal(env.str("BILLING_FAKE_DECLINE_OVER", default="5000"))
BILLING_FAKE_FAILURE_RATE = env.float("BILLING_FAKE_FAILURE_RATE", default=0.0)
BILLING_FAKE_LATENCY_MS = env.int("BILLING_FAKE_LATENCY_MS", default=0)
# ISO 4217 code given to an order that names no currency.
ORDER_DEFAULT_CURRENCY = env.str("ORDER_DEFAULT_CURRENCY", default="EUR")
# The ISO 4217 codes the shop accepts (all with two decimal places, like unit prices).
ORDER_CURRENCIES = env.list(
    "ORDER_CURRENCIES",
    default=["EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "CAD", "AUD"],
)
# Orders per page on GET /api/orders/ (clients may ask for up to API_MAX_PAGE_SIZE).
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=20)
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=100)
# Requests per user, and per anonymous client address, over the API ("600/minute"; "off").
API_THROTTLE_USER_RATE = _rate("API_THROTTLE_USER_RATE", default="600/minute")
API_THROTTLE_ANON_RATE = _rate("API_THROTTLE_ANON_RATE", default="60/minute")
# Proxies in front of the app that append to X-Forwarded-For (1 behind Heroku's router): the
# anonymous throttle keys on the address they saw. 0 trusts the header not at all.
API_TRUSTED_PROXIES = env.int("API_TRUSTED_PROXIES", default=0)
# Login throttling (django-axes) on the admin's and the browsable API's login pages: after
# LOGIN_FAILURE_LIMIT failed logins for one username, or from one client address, that
# username and that address are refused (429, the right password too) until
# LOGIN_COOLOFF_MINUTES have passed since the last failure, or staff lift it. 0: until lifted.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_COOLOFF_MINUTES = env.float("LOGIN_COOLOFF_MINUTES", default=15)
# Seconds an API client is told to wait (Retry-After) when the database fails under its
# request (a 503); long enough for a failover or a restart, short enough not to lose a buyer.
API_DATABASE_RETRY_AFTER_SECONDS = env.int("API_DATABASE_RETRY_AFTER_SECONDS", default=5)
# Largest request body accepted, in bytes (413 above it); orders are a few hundred bytes.
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=64 * 1024)
# DEBUG, INFO, WARNING...: the level of the project's own loggers (and Celery's).
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "json": one JSON object per line, for a log platform; "text": for people (DEBUG's default).
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
# Seconds /readyz waits for the database and the broker (checked at once) before a 503.
READINESS_TIMEOUT_SECONDS = env.float("READINESS_TIMEOUT_SECONDS", default=2.0)
# Seconds each process reuses its last /readyz answer: anonymous probes, however many, cost one
# database and one broker connection per process per this time. 0 checks on every probe.
READINESS_CACHE_SECONDS = env.float("READINESS_CACHE_SECONDS", default=1.0)
# Flower and RabbitMQ's management UI, linked from the operations dashboard when set.
FLOWER_URL = env.str("FLOWER_URL", default="")
RABBITMQ_MANAGEMENT_URL = env.str("RABBITMQ_MANAGEMENT_URL", default="")
# Bearer token a Prometheus sends for GET /metrics; unset, the endpoint answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Ports where a Celery worker and a relay serve their metrics (no web server of their own);
# unset, they serve none. Each process tree wants its own PROMETHEUS_MULTIPROC_DIR (README).
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=None)
RELAY_METRICS_PORT = env.int("RELAY_METRICS_PORT", default=None)
# Where collectstatic puts the static files that whitenoise serves.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Error reports to Sentry (config/sentry.py): off unless SENTRY_DSN is set. The release
# defaults to the commit Heroku's build names (SOURCE_VERSION); transactions are sampled at
# SENTRY_TRACES_SAMPLE_RATE (0: errors only, though traces still cross the outbox).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="")
SENTRY_RELEASE = env.str("SENTRY_RELEASE", default=env.str("SOURCE_VERSION", default=""))
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
# ------------------------------------------------------------------------------------------

if SECURE_PROXY_SSL_HEADER_ENABLED:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Probes (load balancers, docker compose) call these over plain HTTP from inside.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or text.")

if ORDER_DEFAULT_CURRENCY not in ORDER_CURRENCIES:
    raise ImproperlyConfigured(
        f"ORDER_DEFAULT_CURRENCY={ORDER_DEFAULT_CURRENCY} is not in ORDER_CURRENCIES."
    )

if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=1 for development."
        )
    SECRET_KEY = "django-insecure-development-only-key"  # noqa: S105 - DEBUG only

INSTALLED_APPS = [
    "dashboard.apps.OrderflowAdminConfig",  # Django's admin, plus the operations dashboard
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "axes",
    "core",
    "messaging",
    "ordering",
    "fraud",
    "billing",
    "webhooks",
    "fakegateway",
    "health",
    "monitoring",
    "database_roles",
    "demo",
    "dashboard",
]

MIDDLEWARE = [
    "monitoring.middleware.RequestMetricsMiddleware",
    "core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a login refused for a lockout into its 429.
    "axes.middleware.AxesMiddleware",
]

# django-axes' backend first: it refuses a locked-out username or address before any password
# is checked; Django's own backend then checks the password. API tokens never pass here.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES) if LOGIN_COOLOFF_MINUTES else None
# Either one locks: many passwords tried on one username, or many usernames from one address.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# The client address as the API's throttle sees it (API_TRUSTED_PROXIES), not axes' own
# X-Forwarded-For parsing (its AXES_IPWARE_* settings, unused: django-ipware is not installed).
AXES_CLIENT_IP_CALLABLE = "core.api.throttling.client_address"
# A success does not wipe the failures: a guesser with an account of their own could otherwise
# reset their address's count between guesses at someone else's.
AXES_RESET_ON_SUCCESS = False

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# Error reports (DEBUG pages, mails to ADMINS) hide the connection URLs' passwords too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.error_reports.SettingsFilter"

DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES  # the same bound for forms (admin)

DATABASES = {"default": env.db_url_config(PROCESS_DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = CONN_MAX_AGE
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
USES_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")
# SQLite is for development only (scripts/run.sh); what it needs is here and in sqlite_dev/,
# never in the production modules.
if USES_SQLITE:
    # Take the write lock when a transaction starts, and wait for it, so the worker, relay
    # and web processes queue up instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    # The dashboard's percentile aggregate, which SQLite lacks.
    INSTALLED_APPS.append("sqlite_dev")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "NUM_PROXIES": API_TRUSTED_PROXIES,
    "DEFAULT_THROTTLE_CLASSES": [
        "core.api.throttling.UserRateThrottle",
        "core.api.throttling.AnonRateThrottle",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.StrictPagination",
    "EXCEPTION_HANDLER": "core.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# OpenAPI 3 at /api/schema/, Swagger UI at /api/docs/ from local static files (no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "Orderflow API",
    "DESCRIPTION": (
        "Place orders and follow them through fraud screening and billing. An order is saved "
        "as PENDING and answered at once; its status changes as the pipeline works on it."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ordering.api.docs.forbid_unknown_fields",
        "ordering.api.docs.ordering_needs_a_key",
    ],
    "ENUM_NAME_OVERRIDES": {"OrderStatus": "ordering.state_machine.OrderStatus.choices"},
}

LOGGING = logging_config(level=LOG_LEVEL, json_lines=LOG_FORMAT == "json")

# Celery reads the CELERY_* names below (config/celery.py). JSON only: pickle would let a
# message run code.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# Ack after the task ran, redeliver when its process dies, and take one message at a time,
# so a killed worker loses nothing and holds back nothing.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Prefork processes per worker: two per core measured best (docs/benchmarks, "Sizing"), as a
# step mostly waits on PostgreSQL; Celery's own default is one per core.
CELERY_WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=2 * len(os.sched_getaffinity(0)))
# A task that fails for good is rejected (dead-lettered), never acked and forgotten.
CELERY_TASK_ACKS_ON_FAILURE = False
CELERY_TASK_ACKS_ON_TIMEOUT = False
# The broker confirms every publish; the outbox marks a row published only after that.
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Development without a broker server (scripts/run.sh): messages are files under var/.
    _broker_dir = str(BASE_DIR / "var" / "broker")
    Path(_broker_dir).mkdir(parents=True, exist_ok=True)  # kombu expects it to exist
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": _broker_dir,
        "data_folder_out": _broker_dir,
        # Seconds between looks at the folder: kombu's default of 1 s holds each message
        # (one at a time, prefetch 1) for up to a second.
        "polling_interval": 0.1,
    }
# Every connection Celery opens (workers, beat, publishing): TLS as the URL asks, verified.
CELERY_BROKER_USE_SSL = amqp_ssl_options(
    CELERY_BROKER_URL, ca_file=BROKER_SSL_CA_FILE, server_name=BROKER_SSL_SERVER_NAME
)
if BROKER_SSL_CA_FILE and not CELERY_BROKER_USE_SSL:
    raise ImproperlyConfigured(
        "BROKER_SSL_CA_FILE is set, but the broker URL is not amqps://: it would connect "
        "without TLS."
    )
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_CONNECTION_TIMEOUT
CELERY_BROKER_HEARTBEAT = BROKER_HEARTBEAT
# A worker restarted under its old node name while the broker still holds its dead
# predecessor's connection (a host lost, a partition: until heartbeats give it up) finds its
# remote-control queue locked (405 RESOURCE_LOCKED); Celery exits on that unless channel
# errors are retried, and under a supervisor it crash-loops (honcho stops everything).
CELERY_BROKER_CHANNEL_ERROR_RETRY = True
# Control and event queues exclusive (Celery 5.7's default, kept on purpose): a shared one
# keeps the dead consumer, which swallows control messages, and RabbitMQ 4 deprecates
# transient non-exclusive queues (4.0 warns, later versions refuse them).
CELERY_CONTROL_QUEUE_EXCLUSIVE = True
CELERY_EVENT_QUEUE_EXCLUSIVE = True
# CELERY_BROKER_URL may list the nodes of a cluster, separated by ';': every process tries
# them in turn (kombu failover), and a publish that loses its node goes to the next one.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Tasks running when the broker connection drops are canceled: their messages go back to
# the queue (acks_late) instead of finishing with nobody able to ack them.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Retries wait in RabbitMQ (native delayed delivery needs the quorum type named here).
CELERY_BROKER_NATIVE_DELAYED_DELIVERY_QUEUE_TYPE = "quorum"
# Celery's Django fixup opens a new database connection for every task unless this is set;
# with it, Django's own rules (CONN_MAX_AGE, health checks) decide, run before each task in
# config/celery.py. A new connection per task cost more than the task's own queries.
CELERY_DB_REUSE_MAX = 10_000
# Declares the dead-letter queue first; dead-letters undecodable messages (messaging/consumer.py).
CELERY_WORKER_CONSUMER = "messaging.consumer:PipelineConsumer"
# Store successful task results too (failures are always stored): one more write per message.
RESULTS_STORE_SUCCESSES = env.bool("RESULTS_STORE_SUCCESSES", default=False)
# django-celery-results, but a failure to store a result never fails the task.
CELERY_RESULT_BACKEND = "messaging.results:BestEffortDatabaseBackend"
CELERY_RESULT_EXTENDED = True
# No celery.backend_cleanup: beat would add it daily and delete every result older than a
# day, the tracebacks open dead letters are read by included. prune_messages expires results.
CELERY_RESULT_EXPIRES = None

# Celery beat (the Procfile's `beat`, exactly one instance): housekeeping on the maintenance
# queue, which the Procfile's worker consumes. A message beat sent while no worker ran
# expires instead of piling up behind the next one.
MESSAGE_RETENTION_DAYS = env.float("MESSAGE_RETENTION_DAYS", default=7)
# An order with no way forward for this long is reported (a message normally ends its
# step within seconds; retries back off for at most RETRY_MAX_SECONDS a time).
STUCK_ORDER_MINUTES = env.float("STUCK_ORDER_MINUTES", default=30)
STUCK_ORDER_SWEEP_SECONDS = env.float("STUCK_ORDER_SWEEP_SECONDS", default=300)
# Webhooks (webhooks/): signed callbacks to API clients' endpoints, on a queue and a worker
# process of their own (the Procfile's `webhooks`), so a slow receiver never slows the pipeline.
# Each request waits at most WEBHOOK_TIMEOUT_SECONDS per read and WEBHOOK_DEADLINE_SECONDS in
# all; a failed one is retried WEBHOOK_MAX_ATTEMPTS times in all, backing off from
# WEBHOOK_RETRY_BASE_SECONDS to at most WEBHOOK_RETRY_MAX_SECONDS, then dead-lettered.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5)
WEBHOOK_DEADLINE_SECONDS = env.float("WEBHOOK_DEADLINE_SECONDS", default=15)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=10)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=10)
WEBHOOK_RETRY_MAX_SECONDS = env.int("WEBHOOK_RETRY_MAX_SECONDS", default=3600)
# An endpoint whose deliveries failed this many times in a row (each after all its attempts)
# is disabled, with the reason, until its owner enables it again.
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=20)
# How long a rotated-out secret still signs deliveries, beside the new one, by default.
WEBHOOK_SECRET_GRACE_HOURS = env.int("WEBHOOK_SECRET_GRACE_HOURS", default=24)
WEBHOOK_MAX_ENDPOINTS_PER_OWNER = env.int("WEBHOOK_MAX_ENDPOINTS_PER_OWNER", default=16)
# Targets on loopback (and plain http to them): for development and the tests only. Private,
# link-local and metadata addresses are refused whatever this says.
WEBHOOK_ALLOW_LOOPBACK = env.bool("WEBHOOK_ALLOW_LOOPBACK", default=False)
# Ended deliveries are kept this long (a buyer may redeliver until then), then pruned by beat.
WEBHOOK_RETENTION_DAYS = env.float("WEBHOOK_RETENTION_DAYS", default=30)

CELERY_BEAT_SCHEDULE = {
    "prune-messages": {
        "task": "maintenance.prune_messages",
        "schedule": crontab(hour=3, minute=30),
        "options": {"expires": 12 * 3600},
    },
    "prune-webhook-deliveries": {
        "task": "maintenance.prune_webhook_deliveries",
        "schedule": crontab(hour=3, minute=45),
        "options": {"expires": 12 * 3600},
    },
    "sweep-stuck-orders": {
        "task": "maintenance.sweep_stuck_orders",
        "schedule": STUCK_ORDER_SWEEP_SECONDS,
        "options": {"expires": STUCK_ORDER_SWEEP_SECONDS},
    },
}

sentry.init(
    dsn=SENTRY_DSN,
    environment=SENTRY_ENVIRONMENT,
    release=SENTRY_RELEASE,
    traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    secrets=[
        SECRET_KEY,
        *SECRET_KEY_FALLBACKS,
        *(
            env.db_url_config(url).get("PASSWORD") or ""
            for url in (DATABASE_URL, *DATABASE_PROCESS_URLS.values())
            if url
        ),
        *(
            urlsplit(node).password or ""
            for url in (BROKER_URL_SHARED, *BROKER_URLS.values())
            for node in url.split(";")
        ),
    ],
)

if USES_SQLITE:
    logging.getLogger("config").warning(
        "Running on SQLite (DATABASE_URL is not set): fine for a look around, but it has no "
        "row locks (select_for_update is a no-op) and poor concurrency. Use PostgreSQL for "
        "anything real."
    )
