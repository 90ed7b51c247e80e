"""How a batch's acks and nacks settle its messages, as RabbitMQ may send them.

RabbitMQ may confirm out of order and may settle many deliveries with one `multiple` ack or
nack; the real broker does not choose which on demand, so the bookkeeping is pinned here.
"""

import uuid

from messaging.broker import NACKED, _ConfirmTracker

IDS = [uuid.uuid4() for _ in range(5)]


def settle(*events: tuple[str, int, bool], reason: str = "not confirmed within 2s"):
    tracker = _ConfirmTracker(len(IDS))
    for kind, tag, multiple in events:
        getattr(tracker, f"on_{kind}")(tag, multiple)
    return tracker, tracker.outcome(IDS, unsettled_reason=reason)


def test_one_multiple_ack_confirms_every_earlier_message():
    tracker, confirms = settle(("ack", 5, True))

    assert tracker.unsettled == set()
    assert confirms.confirmed == set(IDS)
    assert confirms.failed == {}


def test_a_multiple_ack_leaves_what_an_earlier_nack_refused():
    tracker, confirms = settle(("nack", 2, False), ("ack", 4, True))

    assert tracker.unsettled == {5}
    assert confirms.confirmed == {IDS[0], IDS[2], IDS[3]}
    assert confirms.failed == {IDS[1]: NACKED, IDS[4]: "not confirmed within 2s"}


def test_a_multiple_nack_refuses_every_earlier_unconfirmed_message():
    _, confirms = settle(("ack", 1, False), ("nack", 3, True), ("ack", 5, False))

    assert confirms.confirmed == {IDS[0], IDS[4]}
    assert confirms.failed == {IDS[1]: NACKED, IDS[2]: NACKED, IDS[3]: "not confirmed within 2s"}


def test_out_of_order_single_acks_confirm_only_their_own_message():
    tracker, confirms = settle(("ack", 3, False), ("ack", 1, False))

    assert tracker.unsettled == {2, 4, 5}
    assert confirms.confirmed == {IDS[0], IDS[2]}


def test_a_repeated_confirm_changes_nothing():
    _, confirms = settle(("nack", 2, False), ("ack", 2, False), ("ack", 2, True))

    assert confirms.confirmed == {IDS[0]}
    assert confirms.failed[IDS[1]] == NACKED
