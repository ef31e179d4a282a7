"""client.js against the server's frame budget (docs/protocol.md §4.2, §4.3).

The server takes N frames a second per socket (`AUTHSOCKET_FRAME_RATE`,
bursts of 2N), refuses the rest `rate_limited`, and closes the socket with
4429 once more than N refusals are outstanding (each accepted frame and each
second forgive some). The client paces its subscribes (at most a few
unanswered, the rest queued, a pause after a refusal) and sends an `auth`
refused `rate_limited` again, so it never earns that close by itself.
Against a real daphne.
"""

import pytest

from tests.browser.isolated import ALICE_LIVE, COUNTING_CLIENT
from tests.servers import alice_rooms

pytestmark = pytest.mark.browser

# An isolated client of alice, live (`window.__c`, counting as
# `COUNTING_CLIENT` says), that also keeps the codes of the closes it reports
# (the `socket` event, phase `closed`) in `window.__closes`.
COUNTING_CLIENT_OF_ALICE = (
    "window.__closes = [];" + COUNTING_CLIENT + "c.addEventListener('socket', (e) => {"
    "  if (e.detail.phase === 'closed') window.__closes.push(e.detail.code);"
    "});" + ALICE_LIVE
)

ALL_SUBSCRIBED = "return arguments[0].every((s) => window.__subscribed[s] >= 1);"


def test_subscribing_more_streams_than_the_burst_is_paced_not_closed(
    server_factory, browsers
):
    """120 rooms at 20 frames/s (bursts of 40), subscribed all at once, then
    all resubscribed by the reconnect after a drop: without pacing, more
    than 20 subscribes would be refused in a row and the server would close
    the socket with 4429, at every reconnect. Two rooms unsubscribed while
    their subscribes still wait in the queue are never subscribed."""
    server = server_factory(
        AUTHSOCKET_FRAME_RATE="20/s", AUTHSOCKET_MAX_SUBSCRIPTIONS=300
    )
    slugs = [f"many{n:03d}" for n in range(120)]
    streams = alice_rooms(server.env, slugs)
    kept, dropped = streams[:-2], streams[-2:]
    page = browsers.context("alice", server).open()
    page.js_async(COUNTING_CLIENT_OF_ALICE, timeout=30)

    # All at once, as a page that opens many rooms does; the last two are
    # given up at once, while they still wait in the queue.
    page.js(
        "const c = window.__c;"
        "for (const stream of arguments[0]) c.subscribe(stream);"
        "for (const stream of arguments[1]) c.unsubscribe(stream);",
        streams,
        dropped,
    )
    page.wait_for(
        lambda _d: (
            page.js(ALL_SUBSCRIBED, kept) or page.js("return window.__closes.length;")
        ),
        timeout=60,
        message="the rooms subscribed at once were not all subscribed",
    )
    assert page.js("return window.__closes;") == []  # no 4429
    assert page.js(ALL_SUBSCRIBED, kept)
    # More than the burst: the server did refuse some, the client waited them out.
    assert page.js("return window.__refused;") >= 1

    page.js("window.__subscribed = {}; window.__c._ws.close(3000);")  # it reconnects
    page.wait_for(
        lambda _d: (
            page.js(ALL_SUBSCRIBED, ["user", *kept])
            or page.js("return window.__closes.length > 1;")
        ),
        timeout=60,
        message="after the reconnect the rooms were not all subscribed again",
    )
    closes = page.js("return window.__closes;")
    assert len(closes) == 1 and 4429 not in closes, closes  # the drop we made, no other
    assert page.js(ALL_SUBSCRIBED, ["user", *kept])
    assert page.js("return [window.__c.state, window.__c.stats.connects];") == [
        "live",
        2,
    ]
    assert not any(
        page.js("return window.__subscribed[arguments[0]];", s) for s in dropped
    )

    # Live on the new socket; nothing of the rooms given up. The message to
    # a kept room is published last: once it is in, the others were sent.
    page.js_async(
        "for (const stream of arguments[0]) await window.__c.api("
        "  `/api/rooms/${stream.slice(5)}/messages`,"
        "  { method: 'POST', body: { data: { text: 'after' } } });",
        [*dropped, kept[-1]],
        timeout=20,
    )
    page.wait_for(
        lambda _d: page.js(
            "return window.__texts[arguments[0]]?.includes('after');", kept[-1]
        ),
        message="a message published after the reconnect did not arrive",
    )
    assert page.js(
        "return arguments[0].map((s) => window.__texts[s] ?? []);", dropped
    ) == [
        [],
        [],
    ]
    page.js("window.__c.close();")


def test_an_auth_frame_refused_rate_limited_is_sent_again(server_factory, browsers):
    """A renewal whose `auth` frame finds the socket's budget spent (10
    frames/s, bursts of 20: the page sent 22 pings just before it) is
    refused `rate_limited`. The client sends the token again after a short
    backoff, on the same socket, and the server takes it: `auth.ok`."""
    server = server_factory(AUTHSOCKET_FRAME_RATE="10/s")
    page = browsers.context("alice", server).open()
    result = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
        + ALICE_LIVE
        + "const phases = [], auths = [], answers = [];"
        "c.addEventListener('socket', (e) => phases.push([e.detail.phase, e.detail.code ?? null]));"
        "const ws = c._ws, send = ws.send.bind(ws), receive = ws.onmessage;"
        # The answers to the `auth` frames, seen before the client acts on them.
        "ws.onmessage = (e) => {"
        "  const frame = JSON.parse(e.data);"
        "  if (auths.some((auth) => auth.ref === frame.ref)) {"
        "    answers.push(frame.type === 'error' ? frame.code : frame.type);"
        "  }"
        "  receive(e);"
        "};"
        # Just before the first `auth` frame goes out, spend the whole budget.
        "ws.send = (text) => {"
        "  const frame = JSON.parse(text);"
        "  if (frame.type === 'auth') {"
        '    if (auths.length === 0) for (let i = 0; i < 22; i++) send(\'{"type":"ping"}\');'
        "    auths.push(frame);"
        "  }"
        "  send(text);"
        "};"
        "await c.refresh();"  # a new token: sent on the live socket
        # Until `renewed`, or 5 s (without the retry nothing more comes).
        "await new Promise((resolve) => {"
        "  setTimeout(resolve, 5000);"
        "  c.addEventListener('socket', (e) => e.detail.phase === 'renewed' && resolve());"
        "});"
        "const result = { phases, answers, state: c.state, connects: c.stats.connects,"
        "  tokens: auths.map((frame) => frame.token === c.accessToken) };"
        "c.close();"
        "return result;",
        timeout=30,
    )
    assert result == {
        "phases": [
            ["renewing", None],
            ["renew_failed", "rate_limited"],
            ["renewing", None],
            ["renewed", None],
        ],
        "answers": ["rate_limited", "auth.ok"],
        "state": "live",
        "connects": 1,
        "tokens": [True, True],  # the new token, twice
    }, result
