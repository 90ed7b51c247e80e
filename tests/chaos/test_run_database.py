"""The database a chaos run makes: fresh, and never another run's (it is dropped first)."""

from chaos.run import database_urls


def test_runs_from_different_databases_on_one_server_get_different_run_databases():
    # Two developers' test databases, one seed: each run drops and re-creates its own only.
    _, run_url, first = database_urls("postgres://postgres@127.0.0.1:5432/test_orderflow_h1", 7)
    _, _, second = database_urls("postgres://postgres@127.0.0.1:5432/test_orderflow_h2", 7)

    assert first != second
    assert run_url == f"postgres://postgres@127.0.0.1:5432/{first}"


def test_the_run_database_is_named_after_its_base_and_seed():
    admin_url, _, name = database_urls("postgres://postgres@127.0.0.1:5432/orderflow", 7)

    assert name == "orderflow_chaos_7"
    assert admin_url == "postgres://postgres@127.0.0.1:5432/postgres"
