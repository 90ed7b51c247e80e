"""SQLite for development only: what `scripts/run.sh` needs to run on SQLite, kept here.

config/settings.py installs this app only when DATABASE_URL names SQLite (its default, for a
look around); production and the test suite run on PostgreSQL without it. The production
modules are written for PostgreSQL and name no database vendor; whatever SQLite lacks is
supplied from here, the way Django itself supplies STDDEV_POP on SQLite.
"""
