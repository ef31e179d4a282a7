"""The client's presence view: snapshots replace it, joins and leaves are idempotent."""

from authsocket_client import PresenceView
from authsocket_client.backoff import Backoff

ALICE, BOB = {"id": 1, "username": "alice"}, {"id": 2, "username": "bob"}


def test_snapshot_replaces_and_repeated_join_or_leave_changes_nothing():
    view = PresenceView("room:lobby")
    view.apply({"type": "presence", "users": [{**ALICE, "connections": 2}], "count": 1})
    assert view.apply({"type": "presence.join", "user": BOB}).changed
    assert not view.apply({"type": "presence.join", "user": BOB}).changed
    assert view.count == 2
    assert view.apply({"type": "presence.leave", "user": ALICE}).changed
    assert not view.apply({"type": "presence.leave", "user": ALICE}).changed
    assert (view.count, [u["id"] for u in view.users]) == (1, [2])
    event = view.apply({"type": "presence", "users": [ALICE], "count": 1500})
    assert [u["id"] for u in event.users] == [1] and event.count == 1500


def test_backoff_is_capped_jittered_and_honours_a_floor():
    backoff = Backoff(base=0.5, cap=4.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0.25 <= d <= 4.0 for d in delays) and max(delays[5:]) >= 2.0
    assert backoff.next_delay(at_least=30.0) == 30.0


def ids(view: PresenceView) -> list[int]:
    return [u["id"] for u in view.users]


def test_a_truncated_view_counts_an_unlisted_leave_once_and_its_rejoin_again():
    """`count` is the true total of a snapshot cut to its 1,000 lowest ids: a
    leave of a user it does not list lowers it once (a repeat changes
    nothing), his join raises it again, and a new snapshot starts afresh."""
    view = PresenceView("room:big")
    far = {"id": 5000, "username": "far"}
    view.apply(
        {"type": "presence", "users": [ALICE, BOB], "count": 1500, "truncated": True}
    )
    left = view.apply({"type": "presence.leave", "user": far})
    assert (left.changed, left.count, view.count) == (True, 1499, 1499)
    repeated = view.apply({"type": "presence.leave", "user": far})
    assert (repeated.changed, view.count) == (False, 1499)

    back = view.apply({"type": "presence.join", "user": far})
    assert (back.changed, view.count, ids(view)) == (True, 1500, [1, 2, 5000])
    assert not view.apply({"type": "presence.join", "user": far}).changed
    assert view.count == 1500
    assert view.apply({"type": "presence.leave", "user": far}).changed
    assert not view.apply({"type": "presence.leave", "user": far}).changed
    assert (view.count, ids(view)) == (1499, [1, 2])

    # A listed user's leave, repeated, also counts once.
    assert view.apply({"type": "presence.leave", "user": BOB}).changed
    assert not view.apply({"type": "presence.leave", "user": BOB}).changed
    assert (view.count, ids(view)) == (1498, [1])

    # A fresh snapshot forgets who left: the same leave counts again.
    view.apply({"type": "presence", "users": [ALICE], "count": 1200, "truncated": True})
    assert view.apply({"type": "presence.leave", "user": far}).changed
    assert view.count == 1199


def test_a_complete_view_ignores_the_leave_of_a_user_it_does_not_list():
    """Not truncated, the listing is everyone: an unlisted user is not there."""
    view = PresenceView("room:lobby")
    view.apply({"type": "presence", "users": [ALICE], "count": 1})
    event = view.apply({"type": "presence.leave", "user": BOB})
    assert (event.changed, view.count, ids(view)) == (False, 1, [1])
    # After a truncated snapshot then a complete one, the same holds again.
    view.apply({"type": "presence", "users": [ALICE], "count": 9, "truncated": True})
    view.apply({"type": "presence", "users": [ALICE], "count": 1})
    assert not view.apply({"type": "presence.leave", "user": BOB}).changed
    assert view.count == 1
