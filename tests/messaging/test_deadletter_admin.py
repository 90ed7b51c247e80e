"""Dead letters in the Django admin, as an operator uses them: find, read, replay, discard."""

import uuid

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse
from django_celery_results.models import TaskResult

from messaging.admin import BODY_PREVIEW_BYTES
from messaging.models import DeadLetter
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import DeadLetterFactory, OrderFactory, UserFactory
from .test_deadletters import ReplayRecorder

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:messaging_deadletter_changelist")


def change_page(dead_letter: DeadLetter) -> str:
    return reverse("admin:messaging_deadletter_change", args=[dead_letter.pk])


def listed(response) -> set[int]:
    return {dead_letter.pk for dead_letter in response.context["cl"].result_list}


def action_choices(response) -> set[str]:
    action_form = response.context["action_form"]
    if action_form is None:
        return set()
    return {name for name, _ in action_form.fields["action"].choices if name}


def select(action: str, *dead_letters: DeadLetter) -> dict:
    return {"action": action, "_selected_action": [d.pk for d in dead_letters]}


@pytest.fixture
def replays() -> ReplayRecorder:
    return ReplayRecorder()


@pytest.fixture
def superuser():
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def operator_client(client, superuser):
    client.force_login(superuser)
    return client


def staff_allowed_to(*codenames: str):
    """A staff user holding exactly these messaging permissions."""
    user = UserFactory(is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="messaging", codename__in=codenames)
    )
    assert user.user_permissions.count() == len(codenames)
    return user


# Reading ------------------------------------------------------------------------------------


def test_changelist_lists_dead_letters_newest_death_first(operator_client):
    older, newer = DeadLetterFactory(), DeadLetterFactory()

    response = operator_client.get(CHANGELIST)

    assert response.status_code == 200
    assert [d.pk for d in response.context["cl"].result_list] == [newer.pk, older.pk]
    assert str(older.subject_id) in response.text


def test_change_page_shows_what_the_message_said_and_why_it_died(operator_client):
    dead_letter = DeadLetterFactory(reason="delivery_limit", death_count=3)
    TaskResult.objects.create(
        task_id=dead_letter.message_id, traceback="Traceback: <GatewayTimeout> after 30 s"
    )

    response = operator_client.get(change_page(dead_letter))

    assert response.status_code == 200
    for shown in (dead_letter.message_id, "fraud.screen_order", "delivery_limit", "x-death"):
        assert shown in response.text
    assert "Traceback: &lt;GatewayTimeout&gt; after 30 s" in response.text
    assert "<GatewayTimeout>" not in response.text
    assert str(dead_letter.subject_id) in response.text  # the body, as text
    assert 'name="_save"' not in response.text  # read-only


def test_a_dead_letter_without_a_known_error_says_so(operator_client):
    response = operator_client.get(change_page(DeadLetterFactory()))

    assert "<pre>unknown</pre>" in response.text


def test_a_body_with_markup_is_shown_escaped(operator_client):
    dead_letter = DeadLetterFactory(body=b'[[], {"note": "<script>alert(1)</script>"}, {}]')

    response = operator_client.get(change_page(dead_letter))

    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_a_header_with_markup_is_shown_escaped(operator_client):
    dead_letter = DeadLetterFactory(headers={"task": "<img src=x onerror=alert(1)>"})

    response = operator_client.get(change_page(dead_letter))

    assert "<img src=x onerror=alert(1)>" not in response.text


def test_a_binary_body_is_shown_with_its_bytes_escaped(operator_client):
    dead_letter = DeadLetterFactory(body=b"\xff\x00\xfe\x80binary", subject_id=None)

    response = operator_client.get(change_page(dead_letter))

    assert response.status_code == 200
    assert "\\xff" in response.text and "binary" in response.text


def test_a_long_body_is_cut_short_and_says_how_much_is_left(operator_client):
    dead_letter = DeadLetterFactory(body=b"a" * (BODY_PREVIEW_BYTES + 123))

    response = operator_client.get(change_page(dead_letter))

    assert response.status_code == 200
    assert "123 more bytes" in response.text
    assert "a" * (BODY_PREVIEW_BYTES + 1) not in response.text


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ({"status__exact": "REPLAYED"}, "replayed"),
        ({"reason": "delivery_limit"}, "crashed"),
        ({"queue": "billing"}, "billing"),
        ({"task_name": "billing.charge_order"}, "billing"),
    ],
)
def test_changelist_filters_by_status_reason_queue_and_task(operator_client, query, wanted):
    dead_letters = {
        "new": DeadLetterFactory(),
        "replayed": DeadLetterFactory(status=DeadLetter.Status.REPLAYED),
        "crashed": DeadLetterFactory(reason="delivery_limit"),
        "billing": DeadLetterFactory(queue="billing", task_name="billing.charge_order"),
    }

    response = operator_client.get(CHANGELIST, query)

    assert response.status_code == 200
    assert listed(response) == {dead_letters[wanted].pk}


@pytest.mark.parametrize("term", ["order-id", "order-id-padded", "message-id", "task"])
def test_search_by_order_id_message_id_and_task(operator_client, term):
    wanted = DeadLetterFactory(task_name="billing.charge_order", queue="billing")
    DeadLetterFactory()
    query = {
        "order-id": str(wanted.subject_id),
        "order-id-padded": f"  {str(wanted.subject_id).upper()} ",
        "message-id": wanted.message_id,
        "task": "charge_order",
    }[term]

    response = operator_client.get(CHANGELIST, {"q": query})

    assert response.status_code == 200
    assert listed(response) == {wanted.pk}


def test_a_search_that_is_not_a_uuid_finds_nothing_and_does_not_fail(operator_client):
    DeadLetterFactory()

    response = operator_client.get(CHANGELIST, {"q": "' OR 1=1 --"})

    assert (response.status_code, listed(response)) == (200, set())


def test_a_search_by_order_id_keeps_the_list_filters(operator_client):
    order_id = uuid.uuid4()
    DeadLetterFactory(subject_id=order_id, status=DeadLetter.Status.DISCARDED)
    new = DeadLetterFactory(subject_id=order_id, queue="billing", task_name="billing.charge_order")

    response = operator_client.get(CHANGELIST, {"q": str(order_id), "status__exact": "NEW"})

    assert listed(response) == {new.pk}


# Acting: who may replay and discard ------------------------------------------------------------


def test_a_superuser_may_replay_and_discard_but_never_delete(operator_client):
    DeadLetterFactory()

    response = operator_client.get(CHANGELIST)

    assert action_choices(response) == {"replay_selected", "discard_selected"}


@pytest.mark.parametrize(
    ("codenames", "actions"),
    [
        (["view_deadletter"], set()),
        (["view_deadletter", "replay_deadletter"], {"replay_selected"}),
        (["view_deadletter", "discard_deadletter"], {"discard_selected"}),
    ],
)
def test_the_actions_offered_follow_the_permissions(client, codenames, actions):
    DeadLetterFactory()
    client.force_login(staff_allowed_to(*codenames))

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert action_choices(response) == actions


@pytest.mark.parametrize("action", ["replay_selected", "discard_selected"])
def test_staff_who_may_only_view_cannot_act_by_posting_the_action(client, replays, action):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(subject_id=order.id)
    client.force_login(staff_allowed_to("view_deadletter"))

    response = client.post(CHANGELIST, select(action, dead_letter), follow=True)

    assert response.status_code == 200
    dead_letter.refresh_from_db()
    assert (dead_letter.status, dead_letter.acted_by) == (DeadLetter.Status.NEW, None)
    assert replays.published == []
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert not LogEntry.objects.exists()


def test_staff_without_the_view_permission_cannot_see_dead_letters(client):
    client.force_login(staff_allowed_to("replay_deadletter"))

    assert client.get(CHANGELIST).status_code == 403


def test_staff_allowed_to_replay_replay_and_it_is_logged(client, replays):
    operator = staff_allowed_to("view_deadletter", "replay_deadletter")
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter, untouched = DeadLetterFactory(subject_id=order.id), DeadLetterFactory()
    client.force_login(operator)

    response = client.post(CHANGELIST, select("replay_selected", dead_letter), follow=True)

    assert response.status_code == 200
    assert "Replayed 1 dead letter(s)." in response.text
    dead_letter.refresh_from_db()
    assert (dead_letter.status, dead_letter.replay_count) == (DeadLetter.Status.REPLAYED, 1)
    assert dead_letter.acted_by == operator
    assert [p["pk"] for p in replays.published] == [dead_letter.pk]
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.user, entry.action_flag) == (
        str(dead_letter.pk),
        operator,
        CHANGE,
    )
    assert entry.get_change_message() == "Replayed"
    untouched.refresh_from_db()
    assert untouched.status == DeadLetter.Status.NEW


def test_staff_allowed_to_discard_discard_and_it_is_logged(client, replays):
    operator = staff_allowed_to("view_deadletter", "discard_deadletter")
    first, second = DeadLetterFactory(), DeadLetterFactory()
    client.force_login(operator)

    response = client.post(CHANGELIST, select("discard_selected", first, second), follow=True)

    assert "Discarded 2 dead letter(s)." in response.text
    for dead_letter in (first, second):
        dead_letter.refresh_from_db()
        assert (dead_letter.status, dead_letter.acted_by) == (
            DeadLetter.Status.DISCARDED,
            operator,
        )
    assert replays.published == []
    assert sorted(LogEntry.objects.values_list("object_id", "change_message")) == sorted(
        [(str(first.pk), "Discarded"), (str(second.pk), "Discarded")]
    )


def test_staff_allowed_only_to_discard_cannot_replay(client, replays):
    dead_letter = DeadLetterFactory()
    client.force_login(staff_allowed_to("view_deadletter", "discard_deadletter"))

    client.post(CHANGELIST, select("replay_selected", dead_letter), follow=True)

    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.NEW
    assert replays.published == []


def test_a_replay_of_a_step_the_order_passed_is_reported_and_changes_nothing(
    operator_client, replays
):
    order = OrderFactory(status=OrderStatus.APPROVED)
    dead_letter = DeadLetterFactory(subject_id=order.id, status=DeadLetter.Status.STALE)

    response = operator_client.post(CHANGELIST, select("replay_selected", dead_letter), follow=True)

    assert response.status_code == 200
    assert f"#{dead_letter.pk}: Order {order.id} is APPROVED: it has passed" in response.text
    assert "dead letter(s)." not in response.text
    dead_letter.refresh_from_db()
    assert (dead_letter.status, dead_letter.replay_count) == (DeadLetter.Status.STALE, 0)
    order.refresh_from_db()
    assert (order.status, order.version) == (OrderStatus.APPROVED, 1)
    assert not LogEntry.objects.exists()
    assert replays.published == []


def test_replaying_a_discarded_one_is_refused_and_the_rest_are_replayed(operator_client, replays):
    discarded = DeadLetterFactory(status=DeadLetter.Status.DISCARDED)
    new = DeadLetterFactory()

    response = operator_client.post(
        CHANGELIST, select("replay_selected", discarded, new), follow=True
    )

    assert f"#{discarded.pk}: Dead letter {discarded.pk} cannot be replayed" in response.text
    assert "Replayed 1 dead letter(s)." in response.text
    assert [p["pk"] for p in replays.published] == [new.pk]
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [str(new.pk)]


# Never added, edited or deleted -----------------------------------------------------------------


def test_dead_letters_cannot_be_added_changed_or_deleted_even_by_a_superuser(operator_client):
    dead_letter = DeadLetterFactory()
    delete_page = reverse("admin:messaging_deadletter_delete", args=[dead_letter.pk])

    assert operator_client.get(reverse("admin:messaging_deadletter_add")).status_code == 403
    assert operator_client.get(delete_page).status_code == 403
    assert operator_client.post(delete_page, {"post": "yes"}).status_code == 403
    assert operator_client.post(change_page(dead_letter), {"status": "DISCARDED"}).status_code == (
        403
    )
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.NEW


def test_the_bulk_delete_action_is_not_offered_or_obeyed(operator_client):
    dead_letter = DeadLetterFactory()

    operator_client.post(
        CHANGELIST, select("delete_selected", dead_letter) | {"post": "yes"}, follow=True
    )

    assert DeadLetter.objects.filter(pk=dead_letter.pk).exists()


# Bulk replay by filter ------------------------------------------------------------------------

BULK_REPLAY = reverse("admin:messaging_deadletter_bulk_replay")
BILLING = {"queue": "billing", "task_name": "billing.charge_order"}


def test_the_changelist_links_to_bulk_replay_for_those_who_may_replay(client):
    client.force_login(staff_allowed_to("view_deadletter", "replay_deadletter"))
    may = client.get(CHANGELIST).text
    client.force_login(staff_allowed_to("view_deadletter"))
    may_not = client.get(CHANGELIST).text

    assert f'id="bulk-replay-link" href="{BULK_REPLAY}"' in may
    assert "bulk-replay-link" not in may_not


def test_bulk_replay_counts_first_and_replays_nothing_until_confirmed(operator_client, replays):
    matches = [DeadLetterFactory(**BILLING), DeadLetterFactory(**BILLING)]
    DeadLetterFactory(), DeadLetterFactory(**BILLING, reason="delivery_limit")
    DeadLetterFactory(**BILLING, status=DeadLetter.Status.REPLAYED)

    response = operator_client.get(BULK_REPLAY, {"task": "billing.charge_order", "reason": "rej"})

    assert response.status_code == 200
    assert '<span class="count">2</span> dead letters match; replay them?' in response.text
    for letter in matches:
        assert f'<input type="hidden" name="id" value="{letter.pk}">' in response.text
    assert replays.published == []


def test_a_confirmed_bulk_replay_replays_exactly_the_ones_shown(operator_client, replays):
    shown = [DeadLetterFactory(**BILLING), DeadLetterFactory(**BILLING)]
    later = DeadLetterFactory(**BILLING)  # died after the count: not replayed unseen
    other = DeadLetterFactory()

    response = operator_client.post(
        f"{BULK_REPLAY}?task=billing.charge_order",
        {"id": [d.pk for d in shown], "confirm": "1"},
        follow=True,
    )

    assert "Replayed 2 dead letter(s)." in response.text
    assert [p["pk"] for p in replays.published] == [d.pk for d in shown]
    statuses = {d.pk: d.status for d in DeadLetter.objects.all()}
    assert [statuses[d.pk] for d in (*shown, later, other)] == ["REPLAYED"] * 2 + ["NEW"] * 2
    assert LogEntry.objects.filter(action_flag=CHANGE, change_message="Replayed").count() == 2


def test_a_bulk_replay_names_each_refused_one(operator_client, replays):
    refused = DeadLetterFactory(**BILLING)
    Order.objects.filter(pk=refused.subject_id).update(status=OrderStatus.PROCESSED, failed_from="")

    response = operator_client.post(
        f"{BULK_REPLAY}?task=billing.charge_order", {"id": [refused.pk]}, follow=True
    )

    assert f"#{refused.pk}: Order {refused.subject_id} is PROCESSED" in response.text
    assert replays.published == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_staff_without_the_replay_permission_cannot_bulk_replay(client, replays, method):
    client.force_login(staff_allowed_to("view_deadletter", "discard_deadletter"))
    letter = DeadLetterFactory()

    response = getattr(client, method)(
        f"{BULK_REPLAY}?task=fraud.screen_order", {"id": [letter.pk]}
    )

    assert response.status_code == 403
    assert replays.published == []
    assert DeadLetter.objects.get(pk=letter.pk).status == "NEW"
