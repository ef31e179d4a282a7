"""client.js keeps a presence view per stream (docs/protocol.md §4.4).

A snapshot lists at most 1,000 users, `count` is the full number and
`"truncated": true` says the list was cut: a `presence.leave` of a user the
list did not show still lowers the count, once. The frames come from a
scripted server in the page (`tests/browser/isolated.py`): a snapshot of
more than 1,000 users is hard to reach with the real one.
"""

import pytest

from tests.browser.isolated import ALICE_LIVE, scripted_socket

pytestmark = pytest.mark.browser

STREAM = "room:crowd"

# An isolated client of alice on the scripted server, subscribed to
# `arguments[0]` with presence, whose first snapshot is `arguments[1]`:
# `window.__c`. `window.__changes` records each `presence` event as
# [change, count]; resolves once that snapshot is in the view.
PRESENCE_CLIENT = (
    "const { AuthSocket } = await import('/static/authsocket/client.js');"
    + scripted_socket("ScriptedSocket")
    + "window.__snapshots = { [arguments[0]]: arguments[1] };"
    "const real = window.WebSocket;"
    "window.WebSocket = ScriptedSocket;"
    "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
    "window.__c = c; window.__changes = [];"
    "c.addEventListener('presence', (e) => {"
    "  if (e.detail.stream === arguments[0]) window.__changes.push([e.detail.change, e.detail.count]);"
    "});"
    "try {" + ALICE_LIVE + "  await new Promise((resolve) => {"
    "    c.addEventListener('presence', (e) => e.detail.change === 'snapshot' && resolve());"
    "    c.subscribe(arguments[0], { presence: true });"
    "  });"
    "} finally { window.WebSocket = real; }"
)

# Hands the client each frame of `arguments[0]`; the view's count after each.
FEED = (
    "const c = window.__c;"
    "return arguments[0].map((frame) => {"
    "  window.__server.push(frame);"
    "  return c.presence(frame.stream).count;"
    "});"
)


def user(user_id: int) -> dict:
    return {"id": user_id, "username": f"user{user_id}"}


def frame(kind: str, user_id: int) -> dict:
    return {"type": f"presence.{kind}", "stream": STREAM, "user": user(user_id)}


def snapshot(users: list[int], count: int, truncated: bool) -> dict:
    cut = {"truncated": True} if truncated else {}
    listed = [{**user(n), "connections": 1} for n in users]
    return {
        "type": "presence",
        "stream": STREAM,
        "users": listed,
        "count": count,
        **cut,
    }


def test_a_leave_outside_a_truncated_snapshot_lowers_the_count_once(server, browsers):
    """1,500 users, three listed. A leave of an unlisted user lowers the
    count once (a repeat changes nothing), a later join of his raises it
    again, a listed user's leave counts once too; a fresh snapshot forgets
    who left. In a full (untruncated) view, an unlisted user was not there:
    his leave changes nothing."""
    page = browsers.context("alice").open()
    first = snapshot([1, 2, 3], 1500, truncated=True)
    page.js_async(PRESENCE_CLIENT, STREAM, first, timeout=20)
    assert page.js(f"return window.__c.presence('{STREAM}').count;") == 1500

    counts = page.js(
        FEED,
        [
            frame("leave", 5000),  # unlisted
            frame("leave", 5000),  # the same leave again
            frame("leave", 2),  # listed
            frame("leave", 2),
            frame("join", 5000),  # back
            frame("join", 5000),
            frame("leave", 5000),  # listed now
            frame("leave", 5000),
            frame("join", 6000),  # not there before
            frame("join", 6000),
        ],
    )
    assert counts == [1499, 1499, 1498, 1498, 1499, 1499, 1498, 1498, 1499, 1499]

    # A fresh snapshot replaces the view and forgets who had left.
    counts = page.js(
        FEED,
        [
            snapshot([1], 1200, truncated=True),
            frame("leave", 5000),
            frame("leave", 5000),
            frame("leave", 6000),
        ],
    )
    assert counts == [1200, 1199, 1199, 1198]

    # A full view lists everyone: an unlisted user's leave changes nothing.
    counts = page.js(
        FEED,
        [
            snapshot([1, 2], 2, truncated=False),
            frame("leave", 7000),
            frame("leave", 2),
            frame("leave", 2),
        ],
    )
    assert counts == [2, 2, 1, 1]
    view = page.js(f"return window.__c.presence('{STREAM}');")
    assert view == {
        "users": [{**user(1), "connections": 1}],
        "count": 1,
        "truncated": False,
    }

    # An event for every change of the view, none for a frame that changed nothing.
    assert page.js("return window.__changes;") == [
        ["snapshot", 1500],
        ["leave", 1499],
        ["leave", 1498],
        ["join", 1499],
        ["leave", 1498],
        ["join", 1499],
        ["snapshot", 1200],
        ["leave", 1199],
        ["leave", 1198],
        ["snapshot", 2],
        ["leave", 1],
    ]
    page.js("window.__c.close();")


def test_presence_frames_a_server_got_wrong_leave_the_view_standing(server, browsers):
    """A snapshot whose `users` is no list is ignored; entries that are no
    user are skipped; a join or leave of something that is no user changes
    nothing. None of them may throw out of the socket's message handler."""
    page = browsers.context("alice").open()
    page.js_async(PRESENCE_CLIENT, STREAM, snapshot([1, 2], 2, False), timeout=20)
    counts = page.js(
        FEED,
        [
            {**snapshot([], 9, False), "users": None},
            {**snapshot([], 9, False), "users": "everyone"},
            {**snapshot([], 3, False), "users": [None, 5, "x", user(7)]},
            {"type": "presence.join", "stream": STREAM, "user": None},
            {"type": "presence.join", "stream": STREAM, "user": 8},
            {"type": "presence.leave", "stream": STREAM, "user": "user7"},
        ],
    )
    assert counts == [2, 2, 3, 3, 3, 3]
    view = page.js(f"return window.__c.presence('{STREAM}');")
    assert [u["id"] for u in view["users"]] == [7]
    assert page.js("return window.__c.state;") == "live"
    page.js("window.__c.close();")
