"""client.js keeps one position per stream from the server's answers (docs/protocol.md §4.2).

`subscribed` carries `last_id` and, when the server cannot honour `since`,
`reset`; a truncated replay ends with `next_since`. The client must resume
from `last_id` when it had nothing yet, take every later message after a
`reset`, and page through truncations: each id once, in order, none lost.
"""

import pytest

from tests.browser.isolated import ALICE_LIVE, COUNTING_CLIENT
from tests.http import call
from tests.servers import alice_rooms, manage

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


# A second client in the page, of the page's user, that asks for nothing by
# itself: it never subscribes `user`. Its `message` ids of `arguments[0]` and
# its `subscribed` answers for it are counted; resolves once it is live and
# its first answers are in.
OTHER_CLIENT = (
    "const { AuthSocket } = await import('/static/authsocket/client.js');"
    "const c = new AuthSocket({ channelName: 'isolated', transport: 'subprotocol' });"
    "window.__other = c; window.__otherIds = []; window.__otherSubscribed = 0;"
    "c.addEventListener('message', (e) => {"
    "  if (e.detail.stream === arguments[0]) window.__otherIds.push(e.detail.id);"
    "});"
    "c.addEventListener('subscription', (e) => {"
    "  if (e.detail.stream === arguments[0] && e.detail.status === 'subscribed') window.__otherSubscribed++;"
    "});"
    + ALICE_LIVE
    + "await c.ping();"  # answered after the `subscribe` frames sent at `welcome`
)


def other_ids(page) -> list[int]:
    return page.js("return window.__otherIds.slice();")


def test_the_user_stream_resumes_when_nothing_arrived_before_the_drop(
    server, browsers, notify
):
    """No notification had arrived when the server went away: the client
    still knows the `user` stream's `last_id` (it subscribes `user` on every
    connection), so one stored while it was down is replayed after the
    reconnect — on the demo's pane, and for a client that never asked for
    `user` itself."""
    alice = browsers.signed_in("alice", "alice")
    alice.wait_pane(LOBBY)
    alice.js_async(OTHER_CLIENT, "user")
    assert alice.texts("user") == [] and other_ids(alice) == []

    server.stop()
    alice.wait_state("reconnecting", timeout=10)
    notify(server, "alice", "stored while down")
    server.start()
    alice.wait_state("live", timeout=40)
    alice.wait_message("user", "stored while down", timeout=10)
    stored = alice.messages("user")[-1]["id"]
    alice.wait_for(
        lambda _d: other_ids(alice) == [stored],
        timeout=40,
        message="the notification stored while down was not replayed to the client",
    )
    alice.js("window.__other.close();")


def test_a_stream_without_history_is_followed_again_after_a_reconnect(
    server_factory, browsers
):
    """A kind without history numbers its messages but refuses `since`
    (`bad_request`, docs/streams.md): after a drop the client subscribes it
    again from now instead of losing it."""
    server = server_factory(DJANGO_SETTINGS_MODULE="tests.settings_kinds")
    alice = browsers.signed_in("alice", "alice", server)
    alice.js_async(OTHER_CLIENT, "board:news")
    alice.js_async(
        SUBSCRIBE.replace("authsocketDemo.client", "__other"), "board:news", {}
    )

    def board(text: str) -> int:
        status, body, _ = call("POST", f"{server.http}/kinds-test/board/news", text)
        assert status == 201, body
        return body["id"]

    first = board("before the drop")
    alice.wait_for(lambda _d: other_ids(alice) == [first], message="no live message")
    alice.js("window.__other._ws.close(3000);")  # dropped: it reconnects by itself
    alice.wait_for(
        lambda _d: alice.js("return window.__otherSubscribed;") == 2,
        timeout=20,
        message="the stream was not subscribed again after the reconnect",
    )
    second = board("after the drop")
    alice.wait_for(
        lambda _d: other_ids(alice) == [first, second],
        message="the stream was lost after the reconnect",
    )
    alice.js("window.__other.close();")


# An isolated client of alice (`COUNTING_CLIENT`) that follows each room of
# `arguments[0]`, subscribed one by one at 4 a second (under the server's 5/s).
PACED_CLIENT = (
    COUNTING_CLIENT + ALICE_LIVE + "for (const stream of arguments[0]) {"
    "  await new Promise((resolve) => {"
    "    const seen = (e) => {"
    "      if (e.detail.stream === stream && e.detail.status === 'subscribed') {"
    "        c.removeEventListener('subscription', seen); resolve();"
    "      }"
    "    };"
    "    c.addEventListener('subscription', seen);"
    "    c.subscribe(stream);"
    "  });"
    "  await new Promise((resolve) => setTimeout(resolve, 250));"
    "}"
)


def test_resubscribes_refused_rate_limited_are_sent_again(server_factory, browsers):
    """After a reconnect the client subscribes every stream at once, more
    frames than the server's burst (2N) allows: the ones past it are refused
    `rate_limited`, which only means "not now". They are sent again after a
    backoff, so every stream is followed again, none silently lost."""
    server = server_factory(AUTHSOCKET_FRAME_RATE="5/s")  # bursts of 10 frames
    slugs = [f"busy{n}" for n in range(12)]  # with `user`: 13 subscribes at once
    streams = alice_rooms(server.env, slugs)
    page = browsers.context("alice", server).open()
    page.js_async(PACED_CLIENT, streams, timeout=30)
    assert page.js("return window.__refused;") == 0  # paced: nothing refused yet

    page.js("window.__subscribed = {}; window.__c._ws.close(3000);")  # it reconnects
    page.wait_for(
        lambda _d: page.js(
            "return arguments[0].every((s) => window.__subscribed[s] >= 1);", streams
        ),
        timeout=20,
        message="a stream refused `rate_limited` was never subscribed again",
    )
    assert page.js("return window.__refused;") >= 1  # the burst was refused in part
    assert page.js("return window.__c.state;") == "live"
    page.js_async(
        "for (const slug of arguments[0]) await window.__c.api("
        "  `/api/rooms/${slug}/messages`, { method: 'POST', body: { data: { text: 'after' } } });",
        slugs,
        timeout=20,
    )
    page.wait_for(
        lambda _d: page.js(
            "return arguments[0].every((s) => window.__texts[s]?.includes('after'));",
            streams,
        ),
        message="a message published after the reconnect did not reach every stream",
    )
    page.js("window.__c.close();")
