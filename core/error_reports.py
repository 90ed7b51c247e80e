"""What Django's error reports (DEBUG pages, mails to ADMINS) may show of the settings."""

import re

from django.views import debug


class SettingsFilter(debug.SafeExceptionReporterFilter):
    """Django's filter of error reports, which also hides connection URLs: DATABASE_URL,
    CELERY_BROKER_URL and CLOUDAMQP_URL carry passwords under names it would show."""

    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL", flags=re.IGNORECASE
    )
