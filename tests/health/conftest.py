import pytest

from health.checks import recent_readiness


@pytest.fixture(autouse=True)
def _no_readiness_from_another_test():
    recent_readiness.forget()
    yield
    recent_readiness.forget()
