"""Django settings for Orderflow.

Everything that differs between machines comes from the environment, read in the one
block below; the defaults serve development. README.md has a row for every variable.
"""

import logging
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Environment -------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# Required in production; development gets a fixed, obviously unsafe key.
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# SQLite is the zero-setup default; PostgreSQL is what production and the tests use.
DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
# Seconds a database connection is kept open between requests and tasks.
CONN_MAX_AGE = env.int("CONN_MAX_AGE", default=60)
# CloudAMQP's add-on sets CLOUDAMQP_URL; an explicit CELERY_BROKER_URL wins.
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL",
    default=env.str("CLOUDAMQP_URL", default="amqp://guest:guest@127.0.0.1:5672//"),
)
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
# DEBUG, INFO, WARNING...: the level of the project's own loggers.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# ------------------------------------------------------------------------------------------

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
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "messaging",
    "ordering",
    "fraud",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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

DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = CONN_MAX_AGE
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
USES_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")

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
STATIC_ROOT = BASE_DIR / "staticfiles"
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
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "ordering.api.pagination.OrderPagination",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"level": LOG_LEVEL, "handlers": ["console"], "propagate": False}
        for name in ("ordering", "fraud", "billing", "messaging", "config")
    },
}

# Celery reads the CELERY_* names below (config/celery.py). JSON only: pickle would let a
# message run code.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE

if USES_SQLITE:
    logging.getLogger("config").warning(
        "Running on SQLite (DATABASE_URL is not set): fine for a look around, but it has no "
        "row locks (select_for_update is a no-op) and poor concurrency. Use PostgreSQL for "
        "anything real."
    )
