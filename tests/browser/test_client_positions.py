"""client.js keeps one position per stream from the server's answers (docs/protocol.md §4.2).

`subscribed` carries `last_id` and, when the server cannot honour `since`,
`reset`; a truncated replay ends with `next_since`. The client must resume
from `last_id` when it had nothing yet, take every later message after a
`reset`, and page through truncations: each id once, in order, none lost.
"""

import pytest

from tests.servers import manage

pytestmark = pytest.mark.browser

LOBBY = "room:lobby"

# Collect the client's `message` events of one stream (ids, in arrival order).
COLLECT = (
    "const c = window.authsocketDemo.client;"
    "window.__ids = [];"
    "c.addEventListener('message', (e) => {"
    "  if (e.detail.stream === arguments[0]) window.__ids.push(e.detail.id);"
    "});"
)

# Subscribe as given; resolves once the server answered `subscribed` for it.
SUBSCRIBE = (
    "const c = window.authsocketDemo.client;"
    "await new Promise((resolve) => {"
    "  const seen = (e) => {"
    "    if (e.detail.stream === arguments[0] && e.detail.status === 'subscribed') {"
    "      c.removeEventListener('subscription', seen); resolve();"
    "    }"
    "  };"
    "  c.addEventListener('subscription', seen);"
    "  c.subscribe(arguments[0], arguments[1]);"
    "});"
)

PUBLISH = "return await window.authsocketDemo.client.publish(arguments[0], {text: arguments[1]});"


def ids_received(page) -> list[int]:
    return page.js("return window.__ids.slice();")


def wait_ids(page, expected: list[int], message: str) -> None:
    page.wait_for(lambda _d: len(ids_received(page)) >= len(expected), message=message)
    assert ids_received(page) == expected


def test_a_reset_takes_every_later_message(server, browsers):
    """A position past the server's end (a restored database, a stale tab):
    the server answers `reset`, and the live messages after its `last_id` are
    shown, not dropped as "already seen"."""
    alice = browsers.signed_in("alice", "alice")
    alice.wait_pane(LOBBY)
    first = alice.js_async(PUBLISH, LOBBY, "before")
    alice.wait_message(LOBBY, "before")
    alice.js(COLLECT, LOBBY)
    alice.js_async(SUBSCRIBE, LOBBY, {"since": first + 1000})
    later = [alice.js_async(PUBLISH, LOBBY, f"after {n}") for n in (1, 2)]
    assert later == [first + 1, first + 2]
    wait_ids(alice, later, "messages after a reset never reached the client")
    alice.wait_message(LOBBY, "after 2")


def test_a_truncated_replay_is_paged_through_each_id_once_then_live(
    server_factory, browsers
):
    server = server_factory(AUTHSOCKET_REPLAY_LIMIT=3)
    alice = browsers.signed_in("alice", "alice", server)
    alice.wait_pane(LOBBY)
    stored = [alice.js_async(PUBLISH, LOBBY, f"stored {n}") for n in range(8)]
    alice.wait_message(LOBBY, "stored 7")  # every live copy is in: none counted below
    alice.js(COLLECT, LOBBY)
    alice.js(f"window.authsocketDemo.client.unsubscribe('{LOBBY}');")
    # Three truncated pages of at most 3, each resumed by the client itself.
    alice.js_async(SUBSCRIBE, LOBBY, {"since": 0})
    wait_ids(alice, stored, "the truncated replay was not paged through")
    live = alice.js_async(PUBLISH, LOBBY, "live after the replay")
    wait_ids(alice, [*stored, live], "no live message after the last page")


def test_subscribed_from_now_resumes_from_last_id_after_a_restart(server, browsers):
    """Nothing received on the stream yet: the position is the server's
    `last_id`, so a message stored while the server was down is replayed."""
    alice = browsers.signed_in("alice", "alice")
    alice.wait_pane(LOBBY)
    before = alice.js_async(PUBLISH, LOBBY, "before")
    alice.wait_message(LOBBY, "before")
    alice.js(COLLECT, LOBBY)
    alice.js(f"window.authsocketDemo.client.unsubscribe('{LOBBY}');")
    alice.js_async(SUBSCRIBE, LOBBY, {})  # no `since`: from now on
    assert ids_received(alice) == []

    server.stop()
    alice.wait_state("reconnecting", timeout=10)
    manage(
        server.env,
        "shell",
        "-c",
        "from accounts.models import User; from realtime.models import Room;"
        "from realtime.tests.messages import room_message_store;"
        "room_message_store(room=Room.objects.get(slug='lobby'),"
        " sender=User.objects.get(username='bob'), data={'text': 'while down'})",
    )
    server.start()
    alice.wait_state("live", timeout=40)
    wait_ids(alice, [before + 1], "the message stored while down was not replayed")
