"""factory-boy factories for the whole suite."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from ordering.models import Order, OrderEvent


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"buyer{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class OrderFactory(factory.django.DjangoModelFactory):
    """An order as the API would have accepted it: PENDING, version 1, with its first event."""

    class Meta:
        model = Order
        skip_postgeneration_save = True

    buyer = factory.SubFactory(UserFactory)
    product_name = factory.Faker("catch_phrase")
    quantity = 2
    unit_price = Decimal("19.99")
    currency = "EUR"
    total = factory.LazyAttribute(lambda order: order.quantity * order.unit_price)

    @factory.post_generation
    def created_event(order, create, extracted, **kwargs):
        if create:
            OrderEvent.objects.create(
                order=order, to_status=order.status, cause="created", version=order.version
            )


class BlockedBuyerFactory(factory.django.DjangoModelFactory):
    """A buyer on the fraud blocklist."""

    class Meta:
        model = "fraud.BlockedBuyer"

    buyer = factory.SubFactory(UserFactory)
    reason = "chargebacks"


class OutboxMessageFactory(factory.django.DjangoModelFactory):
    """An unpublished outbox row, as enqueue() leaves it until it is published."""

    class Meta:
        model = "messaging.OutboxMessage"

    task_name = "fraud.screen_order"
    kwargs = factory.Dict({"order_id": factory.Faker("uuid4")})
