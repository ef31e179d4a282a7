"""One socket's subscriptions: what live messages it passes on."""

from realtime.streams import room_stream
from realtime.subscriptions import SubscriptionSet

TEAM = room_stream("team")


def test_user_stream_is_subscribed_from_the_start_and_not_counted():
    subs = SubscriptionSet(user_id=1)
    assert subs.accepts("user", 1)
    assert subs.counted() == 0


def test_live_messages_of_unsubscribed_streams_are_dropped():
    subs = SubscriptionSet(user_id=1)
    assert not subs.accepts("room:team", 1)
    subs.add(TEAM)
    assert subs.accepts("room:team", 1)
    subs.remove("room:team")
    assert not subs.accepts("room:team", 2)
    subs.remove("user")
    assert not subs.accepts("user", 1)


def test_replayed_messages_are_not_delivered_twice():
    subs = SubscriptionSet(user_id=1)
    subs.add(TEAM)
    subs.position("room:team", 5)
    assert [n for n in range(1, 8) if subs.accepts("room:team", n)] == [6, 7]
    subs.delivered("room:team", 3)  # an older id never lowers the mark
    assert not subs.accepts("room:team", 5)


def test_a_paused_stream_passes_nothing_until_positioned_again():
    subs = SubscriptionSet(user_id=1)
    subs.add(TEAM)
    subs.position("room:team", 3, paused=True)
    assert not subs.accepts("room:team", 4)
    subs.position("room:team", 9)
    assert not subs.accepts("room:team", 9) and subs.accepts("room:team", 10)


def test_adding_twice_keeps_the_state():
    subs = SubscriptionSet(user_id=1)
    subs.add(TEAM)
    subs.position("room:team", 4)
    subs.add(TEAM)
    assert subs.counted() == 1
    assert not subs.accepts("room:team", 4)
