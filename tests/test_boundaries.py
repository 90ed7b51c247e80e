"""The arrows between packages: apps import `core/`, never the reverse; `config/` only wires.

Read from the source (the imports each module names), so a new arrow the wrong way fails here
rather than in a review.
"""

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APPS = sorted(
    {name.split(".")[0] for name in settings.INSTALLED_APPS if (ROOT / name.split(".")[0]).is_dir()}
    - {"core"}
)
# What an app may take from config: the Celery app itself, which tasks are registered on, and
# the start of tracing, which each process's entry calls (the relay's is messaging's command).
ALLOWED_FROM_CONFIG = {"config.celery", "config.tracing"}


def imported_modules(package: str) -> list[tuple[str, str]]:
    """(file, module) for every absolute import in the package's modules."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((str(path.relative_to(ROOT)), node.module))
                found += [
                    (str(path.relative_to(ROOT)), f"{node.module}.{alias.name}")
                    for alias in node.names
                ]
    return found


def test_the_apps_are_found():
    assert {"messaging", "ordering", "fraud", "billing", "dashboard"} <= set(APPS)


def test_core_imports_no_app_and_nothing_of_config():
    wrong = [
        (path, module)
        for path, module in imported_modules("core")
        if module.split(".")[0] in {*APPS, "config"}
    ]
    assert wrong == []


@pytest.mark.parametrize("app", APPS)
def test_an_app_takes_only_the_celery_app_from_config(app):
    wrong = [
        (path, module)
        for path, module in imported_modules(app)
        if module.split(".")[0] == "config"
        and module != "config"
        and not any(
            module == allowed or module.startswith(f"{allowed}.") for allowed in ALLOWED_FROM_CONFIG
        )
    ]
    assert wrong == []


# The development-only app that supplies what SQLite lacks (config/settings.py installs it on
# SQLite only); with config/, the one place that may name SQLite.
SQLITE_DEV = "sqlite_dev"


def sqlite_mentions(package: str) -> list[tuple[str, int, str]]:
    """(file, line, what) for code that names SQLite: a string (docstrings aside) or an
    `as_sqlite` method. Migrations are history, not code paths, and are left out."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "sqlite" in node.value.lower() and id(node) not in docstrings:
                    found.append((str(path.relative_to(ROOT)), node.lineno, node.value[:60]))
            elif isinstance(node, ast.FunctionDef | ast.Attribute):
                name = node.name if isinstance(node, ast.FunctionDef) else node.attr
                if name.startswith("as_sqlite"):
                    found.append((str(path.relative_to(ROOT)), node.lineno, name))
    return found


def test_the_sqlite_check_itself_sees_sqlite_code():
    assert sqlite_mentions(SQLITE_DEV)


@pytest.mark.parametrize("package", [*APPS, "core"])
def test_production_code_does_not_bend_for_sqlite(package):
    assert package != SQLITE_DEV
    assert sqlite_mentions(package) == []
