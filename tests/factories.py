"""factory-boy factories for the whole suite."""

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
    unit_price_minor = 1999  # 19.99 EUR
    currency = "EUR"
    total_minor = factory.LazyAttribute(lambda order: order.quantity * order.unit_price_minor)

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


def _celery_body(letter) -> bytes:
    """A Celery protocol-2 JSON body, [args, kwargs, embed], for the dead letter's order."""
    import json  # local: this block is appended to the module

    return json.dumps([[], {"order_id": str(letter.subject_id)}, {}]).encode()


def _now():
    from django.utils import timezone

    return timezone.now()


def _order_failed_at_step(letter):
    """An order that failed at the dead letter's step, as recording the dead letter left it."""
    from ordering.state_machine import OrderStatus
    from ordering.steps import step_of_task

    step = step_of_task(letter.task_name)
    return OrderFactory(status=OrderStatus.FAILED, failed_from=step.status).id


class DeadLetterFactory(factory.django.DjangoModelFactory):
    """A NEW dead letter of fraud.screen_order, as the dead-letter consumer records it, with
    its order FAILED at that step (pass subject_id to name another order)."""

    class Meta:
        model = "messaging.DeadLetter"

    message_id = factory.Faker("uuid4")
    queue = "fraud"
    exchange = factory.SelfAttribute("queue")
    routing_key = factory.SelfAttribute("queue")
    task_name = "fraud.screen_order"
    subject_id = factory.LazyAttribute(_order_failed_at_step)
    reason = "rejected"
    headers = factory.LazyAttribute(
        lambda letter: {
            "id": letter.message_id,
            "task": letter.task_name,
            "x-death": [{"count": 1, "reason": letter.reason, "queue": letter.queue}],
        }
    )
    properties = factory.LazyAttribute(
        lambda letter: {"content_type": letter.content_type, "correlation_id": letter.message_id}
    )
    body = factory.LazyAttribute(_celery_body)
    content_type = "application/json"
    content_encoding = "utf-8"
    first_death_at = factory.LazyFunction(_now)
    last_death_at = factory.SelfAttribute("first_death_at")


def web_superuser(username: str, password: str):
    """A superuser whose password the live web process can check: the suite hashes with MD5
    (fast), which production settings do not accept, so this one is hashed with PBKDF2."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    hasher = PBKDF2PasswordHasher()
    user = get_user_model()(username=username, is_staff=True, is_superuser=True)
    user.password = hasher.encode(password, hasher.salt())
    user.save()
    return user
