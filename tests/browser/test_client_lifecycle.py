"""client.js after `close()`, after a sign-out, and when a view is given up.

A closed client holds no timer that wakes it up again, so it never refreshes
(rotating the shared refresh cookie) behind the page's back.
"""

import pytest

from tests.browser.isolated import ALICE_LIVE, welcoming_socket

pytestmark = pytest.mark.browser

LOBBY = "room:lobby"

# An isolated client of alice, live; `window.__c`. Not the demo's own client:
# its own BroadcastChannel, so the page's client takes none of its tokens.
ISOLATED_CLIENT = (
    "const { AuthSocket } = await import('/static/authsocket/client.js');"
    "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
    "window.__c = c;" + ALICE_LIVE
)


def test_a_refresh_that_fails_after_close_arms_no_timer(server, browsers):
    """The refresh timer fires, `close()` comes while its request is in
    flight, and the request then fails as a network error does: nothing the
    closed client left behind may start another refresh."""
    page = browsers.context("alice").open()
    page.js_async(ISOLATED_CLIENT, timeout=20)
    result = page.js_async(
        "const c = window.__c;"
        "const realFetch = window.fetch, realSetTimeout = window.setTimeout;"
        "let fail, calls = 0;"
        "const requested = new Promise((resolve) => {"
        "  window.fetch = (input, init) => {"
        "    if (!String(input).endsWith('/api/auth/refresh')) return realFetch(input, init);"
        "    calls++;"
        "    if (fail) return Promise.reject(new TypeError('Failed to fetch'));"
        "    return new Promise((_, reject) => {"
        "      fail = () => reject(new TypeError('Failed to fetch')); resolve();"
        "    });"
        "  };"
        "});"
        "const armed = [];"
        "try {"
        "  const timed = c._timedRefresh();"  # what the refresh timer runs
        "  await requested;"
        "  c.close();"
        # Keep every timer set from here on instead of scheduling it.
        "  window.setTimeout = (fn) => { armed.push(fn); return 0; };"
        "  fail();"
        "  await timed;"
        "} finally { window.setTimeout = realSetTimeout; }"
        "const before = calls;"
        "for (const fn of armed) fn();"  # they fire
        "const again = c._refreshing;"
        "await again?.catch(() => {});"
        "window.fetch = realFetch;"
        "return { armed: armed.length, refreshing: again !== null, calls: calls - before };",
        timeout=20,
    )
    assert result == {"armed": 0, "refreshing": False, "calls": 0}, result


def test_a_login_that_finishes_after_close_leaves_the_client_closed(server, browsers):
    """`close()` comes while the login request is in flight: its answer
    arrives afterwards, and the closed client takes no token, arms no timer
    and opens no socket. `login()` rejects with `cancelled`, as `refresh()`
    does when the client is closed under it; the session stays in the cookie."""
    page = browsers.context("alice").open()
    result = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
        "const realFetch = window.fetch, realSetTimeout = window.setTimeout;"
        "const RealWebSocket = window.WebSocket;"
        "let release, answered;"
        "const gate = new Promise((resolve) => { release = resolve; });"
        "const signedIn = new Promise((resolve) => { answered = resolve; });"
        "window.fetch = async (input, init) => {"
        "  if (!String(input).endsWith('/api/auth/login')) return realFetch(input, init);"
        "  const response = await realFetch(input, init);"  # the server signed in
        "  answered();"
        "  await gate;"  # the page sees the answer only after close()
        "  return response;"
        "};"
        "const armed = [], sockets = [];"
        "let outcome;"
        "try {"
        "  const login = c.login('alice', 'authsocket-demo').then("
        "    () => 'resolved', (error) => 'rejected: ' + (error.code ?? error));"
        "  await signedIn;"
        "  c.close();"
        # Keep every timer and socket made from here on instead of running it.
        "  window.setTimeout = (fn) => { armed.push(fn); return 0; };"
        "  window.WebSocket = function (...args) { sockets.push(args); throw new Error('no'); };"
        "  window.WebSocket.OPEN = RealWebSocket.OPEN;"
        "  release();"
        "  outcome = await login;"
        "  await new Promise((resolve) => realSetTimeout(resolve, 200));"
        "} finally {"
        "  window.fetch = realFetch; window.setTimeout = realSetTimeout;"
        "  window.WebSocket = RealWebSocket;"
        "}"
        # The session the server opened is in the cookie: a new client resumes it.
        "const again = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
        "const resumed = await again.resume();"
        "again.close();"
        "return { outcome, armed: armed.length, sockets: sockets.length,"
        "  token: c.accessToken !== null, user: c.user, resumed };",
        timeout=20,
    )
    assert result == {
        "outcome": "rejected: cancelled",
        "armed": 0,
        "sockets": 0,
        "token": False,
        "user": None,
        "resumed": True,
    }, result


# The answer to `arguments[0]` reaches the client only after its socket's
# close (the server's 4403): the order a busy host often shows.
ANSWER_AFTER_THE_CLOSE = (
    "const c = window.authsocketDemo.client, realFetch = window.fetch;"
    "window.fetch = async (input, init) => {"
    "  if (!String(input).endsWith(arguments[0])) return realFetch(input, init);"
    "  const closed = new Promise((resolve) => c.addEventListener('socket', (e) => {"
    "    if (e.detail.phase === 'closed') resolve(); }));"
    "  const response = await realFetch(input, init);"
    "  await closed;"
    "  return response;"
    "};"
)


def revoke_this_session(page) -> None:
    """The sessions panel's "Log out this one" on the row of this browser."""
    page.click("sessions-reload")
    row = '[data-testid="session"][data-current="true"] [data-testid="revoke-session"]'
    page.wait_visible(row)
    page.js("document.querySelector(arguments[0]).click();", row)


@pytest.mark.parametrize(
    "click, path, reason",
    [
        (lambda page: page.click("logout"), "/api/auth/logout", "logout"),
        (lambda page: page.click("logout-all"), "/api/auth/logout-all", "logout_all"),
        (revoke_this_session, "/api/auth/sessions/{sid}", "logout"),
    ],
    ids=["logout", "logout-all", "revoke-this-session"],
)
def test_a_logout_whose_4403_comes_first_is_still_this_tabs_logout(
    server, browsers, click, path, reason
):
    """The call revokes the session, and this tab's own socket may close with
    4403 before the HTTP answer arrives. That close is not "signed out from
    another device", and the `signed-out` message the other tabs get still
    names the session (a tab without a live socket learns it only so)."""
    first = browsers.signed_in("alice-tab1", "alice")
    second = browsers.tab(first, "alice-tab2").open()
    second.wait_state("live")  # resumed from the shared refresh cookie
    sid = first.client("c.sid")
    assert second.client("c.sid") == sid
    second.js(
        "window.__signedOut = [];"
        "new BroadcastChannel('authsocket').onmessage = (e) => {"
        "  if (e.data?.type === 'signed-out') window.__signedOut.push(e.data.sid); };"
    )
    first.js(ANSWER_AFTER_THE_CLOSE, path.format(sid=sid))
    click(first)
    first.wait_state("signed-out")
    assert f"signed-out ({reason})" in first.log_lines()[0]
    assert first.js("return document.getElementById('alert').hidden") is True
    second.wait_for(
        lambda _d: second.js("return window.__signedOut.length"),
        message="no signed-out message reached the other tab",
    )
    assert second.js("return window.__signedOut") == [sid]


def test_subscribing_again_without_presence_drops_the_view(server, browsers):
    """The server stops sending presence to a socket that subscribes again
    without `presence: true` (docs/protocol.md §4.4): the client's view of
    that stream would go stale, so it is dropped, as on unsubscribe."""
    alice = browsers.signed_in("alice", "alice")
    alice.wait_pane(LOBBY)
    alice.wait_for(
        lambda _d: alice.client(f"c.presence('{LOBBY}')?.count") == 1,
        message="no presence snapshot of the lobby",
    )
    changes = alice.js_async(
        "const c = window.authsocketDemo.client, changes = [];"
        "c.addEventListener('presence', (e) => {"
        "  if (e.detail.stream === arguments[0]) changes.push(e.detail.change); });"
        "await new Promise((resolve) => {"
        "  const seen = (e) => {"
        "    if (e.detail.stream === arguments[0] && e.detail.status === 'subscribed') {"
        "      c.removeEventListener('subscription', seen); resolve(); } };"
        "  c.addEventListener('subscription', seen);"
        "  c.subscribe(arguments[0], { presence: false });"
        "});"
        "return changes;",
        LOBBY,
    )
    assert alice.client(f"c.presence('{LOBBY}')") is None
    assert changes == ["unsubscribed"], changes


# A server that answers `welcome` and closes with 1011 at once, every time;
# `window.__openedAt` gets the time of each socket the client makes.
WELCOMING_AND_FAILING_SOCKET = welcoming_socket(
    "FailingSocket", 1011, "window.__openedAt.push(performance.now());"
)


def test_a_server_that_welcomes_and_fails_at_once_gets_a_growing_backoff(
    server, browsers
):
    """1006/1011: "reconnect with capped exponential backoff" (§4.3). A
    `welcome` alone does not reset the backoff: a socket that dies within a
    second of it keeps counting, so the retries slow down."""
    page = browsers.context("alice").open()
    gaps = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated',"
        "  backoffBaseMs: 40, backoffCapMs: 5000 });"
        + ALICE_LIVE
        + "const real = window.WebSocket;"
        + WELCOMING_AND_FAILING_SOCKET
        + "window.__openedAt = []; window.WebSocket = FailingSocket;"
        "try {"
        "  c._ws.close(3000);"  # the real socket drops; every later one is fake
        "  await new Promise((resolve) => {"
        "    const seen = () => window.__openedAt.length >= 6 ? resolve() : c.addEventListener("
        "      'socket', seen, { once: true });"
        "    seen();"
        "  });"
        "} finally { window.WebSocket = real; c.close(); }"
        "const at = window.__openedAt;"
        "return at.slice(1).map((t, i) => t - at[i]);",
        timeout=20,
    )
    # Ceilings 80, 160, 320, 640, 1280 ms for retries 2 to 6: at least half each.
    assert gaps[-1] >= 500, gaps
    assert gaps[-1] > 4 * gaps[0], gaps
