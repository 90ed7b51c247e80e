"""A domain error is answered by its kind (core/errors.py), whichever app raised it."""

import pytest

from core.api.exceptions import api_exception_handler
from core.errors import ApplicationError, NotFound, PermanentError
from ordering.errors import IdempotencyKeyReused, OrderNotCancelable, OrderNotFound
from webhooks.errors import (
    DeliveryNotFound,
    DeliveryNotRedeliverable,
    EndpointLimitReached,
    EndpointNotFound,
    TargetRefused,
    UnknownEventTypes,
)


def answer(error: Exception):
    return api_exception_handler(error, {"request": None, "view": None})


class SomeAppsMissingThing(PermanentError, NotFound):
    """An error of an app the handler has never heard of."""


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (SomeAppsMissingThing, 404),
        (OrderNotFound, 404),
        (EndpointNotFound, 404),
        (DeliveryNotFound, 404),
        (OrderNotCancelable, 409),
        (DeliveryNotRedeliverable, 409),
        (EndpointLimitReached, 409),
        (IdempotencyKeyReused, 422),
        (TargetRefused, 400),
        (UnknownEventTypes, 400),
        (ApplicationError, 400),
    ],
)
def test_each_kind_has_its_code(error, status):
    response = answer(error("what happened", extra={"status": "PROCESSED"}))

    assert response.status_code == status
    assert response.data["detail"] == "what happened"
    # A 404 says nothing more than that; the others add what the client can act on.
    assert ("status" in response.data) == (status != 404)


def test_the_code_names_the_error_not_its_kind():
    assert answer(OrderNotCancelable("no")).data["code"] == "order_not_cancelable"
    assert answer(SomeAppsMissingThing("gone")).data["code"] == "some_apps_missing_thing"
