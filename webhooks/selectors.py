"""Reads of webhook endpoints and deliveries, scoped to their owner."""

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .errors import DeliveryNotFound, EndpointNotFound
from .models import WebhookDelivery, WebhookEndpoint


def endpoints_of(*, owner: AbstractBaseUser) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(owner=owner)


def endpoint_of(*, owner: AbstractBaseUser, endpoint_id: uuid.UUID | str) -> WebhookEndpoint:
    endpoint = endpoints_of(owner=owner).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise EndpointNotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    return endpoint


def deliveries_of(*, owner: AbstractBaseUser) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint__owner=owner)


def delivery_of(*, owner: AbstractBaseUser, delivery_id: uuid.UUID | str) -> WebhookDelivery:
    delivery = deliveries_of(owner=owner).filter(pk=delivery_id).first()
    if delivery is None:
        raise DeliveryNotFound(f"Webhook delivery {delivery_id} does not exist.")
    return delivery
