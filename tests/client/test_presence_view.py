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
