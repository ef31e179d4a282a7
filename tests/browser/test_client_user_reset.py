"""client.js reads the `user` ids a `reset` skipped over HTTP (docs/protocol.md §4.2).

The `user` stream is live from `welcome`. A notification stored after
`welcome` but before the server reads the client's resubscribe (with
`since`) is sent first; the ids between `since` and it can no longer come on
that socket, so `subscribed` says `reset`. They are still stored: the client
reads them with `GET /api/streams/user/messages?after=<since>` and emits
them, in id order, before what came live.

The race is made certain: the page's WebSocket holds the client's `user`
resubscribe until the live notification has reached it; the server and the
client are the real ones.
"""

import pytest

from tests.browser.conftest import DEMO_PASSWORD
from tests.browser.isolated import ALICE_LIVE
from tests.http import call, login

pytestmark = pytest.mark.browser

# An isolated client of alice, `window.__c`, reconnecting fast. Its sockets
# note each `user` id they receive (`window.__wire`) and, while
# `window.__holdUser` is set, keep back a `subscribe` of `user` with `since`
# (`window.__held`) until `window.__release()`. `window.__ids` are the ids of
# the `user` messages it emits, `window.__errors` the codes of its `error`
# events about `user`.
HOLDING_CLIENT = (
    "window.__wire = []; window.__held = []; window.__holdUser = false;"
    "window.__ids = []; window.__errors = [];"
    "const RealWebSocket = window.WebSocket;"
    "window.WebSocket = class extends RealWebSocket {"
    "  constructor(...args) {"
    "    super(...args);"
    "    this.addEventListener('message', (e) => {"
    "      const frame = JSON.parse(e.data);"
    "      if (frame.type === 'message' && frame.stream === 'user') window.__wire.push(frame.id);"
    "    });"
    "  }"
    "  send(text) {"
    "    const frame = JSON.parse(text);"
    "    const resubscribe = frame.type === 'subscribe' && frame.stream === 'user' && 'since' in frame;"
    "    if (window.__holdUser && resubscribe) window.__held.push([this, text]);"
    "    else super.send(text);"
    "  }"
    "};"
    "window.__release = () => {"
    "  window.__holdUser = false;"
    "  for (const [ws, text] of window.__held.splice(0)) RealWebSocket.prototype.send.call(ws, text);"
    "};"
    "const { AuthSocket } = await import('/static/authsocket/client.js');"
    "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated',"
    "  backoffBaseMs: 50, backoffCapMs: 500 });"
    "window.__c = c;"
    "c.addEventListener('message', (e) => {"
    "  if (e.detail.stream === 'user') window.__ids.push(e.detail.id);"
    "});"
    "c.addEventListener('error', (e) => {"
    "  if (e.detail.stream === 'user') window.__errors.push(e.detail.code);"
    "});" + ALICE_LIVE + "return c.user.id;"
)

# From here on, every history read of the page answers 503.
HISTORY_DOWN = (
    "const realFetch = window.fetch;"
    "window.__historyReads = 0;"
    "window.fetch = (input, init) => {"
    "  if (String(input).includes('/api/streams/user/messages')) {"
    "    window.__historyReads++;"
    "    return Promise.resolve(new Response("
    "      JSON.stringify({ detail: 'down', code: 'unavailable' }),"
    "      { status: 503, headers: { 'Content-Type': 'application/json' } }));"
    "  }"
    "  return realFetch(input, init);"
    "};"
)


def ids(page) -> list[int]:
    return page.js("return window.__ids.slice();")


def race(server, page):
    """Stores one notification while the client is away and one live before
    its resubscribe is read, as `test_client_user_reset`'s docstring says;
    answers the ids (before the drop, at risk, live)."""
    alice = page.js_async(HOLDING_CLIENT)
    admin = login(server.http, "admin", DEMO_PASSWORD)["access"]

    def notify(text: str) -> int:
        status, body, _ = call(
            "POST",
            f"{server.http}/api/users/{alice}/notify",
            {"data": {"text": text}},
            token=admin,
        )
        assert status == 201, body
        return body["id"]

    first = notify("before the drop")
    page.wait_for(lambda _d: ids(page) == [first], message="no live notification")
    page.js("window.__c.close();")  # away: nothing of alice's is live on it
    at_risk = notify("stored while away")
    page.js("window.__holdUser = true; window.__c.reconnect();")
    page.wait_for(
        lambda _d: page.js("return window.__held.length;") == 1,
        message="no resubscribe of `user` with `since` after the reconnect",
    )
    live = notify("live after welcome")
    page.wait_for(
        lambda _d: live in page.js("return window.__wire;"),
        message="the live notification did not reach the socket",
    )
    page.js("window.__release();")
    return first, at_risk, live


def test_a_reset_on_user_reads_the_skipped_ids_over_http(server, browsers):
    """The notification stored while away is emitted once, before the live
    one (which the server sent first), and the stream goes on as ever."""
    page = browsers.context("alice", server).open()
    first, at_risk, live = race(server, page)
    page.wait_for(lambda _d: live in ids(page), message="the live one never came")
    assert ids(page) == [first, at_risk, live], "the skipped id was lost"
    assert page.js("return window.__errors;") == []
    assert page.js("return window.__c.state;") == "live"
    page.js("window.__c.close();")


def test_a_read_that_keeps_failing_is_an_error_event_not_a_stall(server, browsers):
    """Every read of the history answers 503: after a bounded number of
    tries the client says so (an `error` event on `user`), emits the live
    notification, and stays live."""
    page = browsers.context("alice", server).open()
    page.js(HISTORY_DOWN)
    first, _at_risk, live = race(server, page)
    page.wait_for(
        lambda _d: page.js("return window.__errors;") == ["unavailable"],
        message="a failed read of the skipped ids was not reported",
    )
    page.wait_for(lambda _d: ids(page) == [first, live], message="the stream stalled")
    assert page.js("return window.__historyReads;") == 3
    assert page.js("return window.__c.state;") == "live"
    page.js("window.__c.close();")
