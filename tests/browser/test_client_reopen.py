"""client.js across `close()`: the state it ends in, and a client opened again.

`close()` stops the client without signing out. A page bound to `state` must
see that (`offline` while a token is held, else `signed-out`), and a client
opened again by `reconnect()`, `resume()` or `login()` must be whole: on the
cross-tab channel, refreshing on time, and not stopped by the unfinished work
of the closed one. A closed client still tells the other tabs what it does to
the shared session, but hears nothing and refreshes nothing by itself.
"""

import pytest

from tests.browser.conftest import WAIT
from tests.browser.isolated import ALICE_LIVE

pytestmark = pytest.mark.browser

# Isolated clients of one tab and another share this channel, not the demo's.
CHANNEL = "reopen"


def isolated_client(transport: str = "subprotocol", **options: int) -> str:
    """An isolated client on CHANNEL as `window.__c`, not signed in.
    `window.__states` keeps each `state` event's detail."""
    extra = "".join(f", {key}: {value}" for key, value in options.items())
    return (
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        f"const c = new AuthSocket({{ transport: '{transport}', channelName: '{CHANNEL}'{extra} }});"
        "window.__c = c; window.__states = [];"
        "c.addEventListener('state', (e) => window.__states.push(e.detail));"
    )


# Resolves once `c` is in the state `arguments[0]`.
STATE_REACHED = (
    "await new Promise((resolve) => {"
    "  const seen = () => c.state === arguments[0] && resolve();"
    "  c.addEventListener('state', seen); seen();"
    "});"
)


def wait_client_state(page, state: str) -> None:
    try:
        page.wait_for(lambda _d: page.js("return window.__c.state") == state)
    except Exception as error:
        states = page.js("return window.__states")
        raise AssertionError(f"{page.name}: never {state}: {states}") from error


def test_close_ends_in_a_documented_state_with_one_event(server, browsers):
    """A live client closed is `offline` (signed in, no socket), told once
    however often close() is called; one closed while its login waits is
    `signed-out`, not stuck `connecting`; one never signed in stays
    `signed-out` and tells nothing."""
    page = browsers.context("alice").open()
    page.js_async(isolated_client() + ALICE_LIVE, timeout=20)
    live = page.js(
        "const c = window.__c; window.__states = [];"
        "c.close(); c.close();"
        "return { state: c.state, events: window.__states, socket: c.socketExpiresAt };"
    )
    assert live == {
        "state": "offline",
        "events": [{"state": "offline", "previous": "live", "reason": "closed"}],
        "socket": None,
    }, live

    logging_in = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        f"const c = new AuthSocket({{ transport: 'subprotocol', channelName: '{CHANNEL}' }});"
        "const realFetch = window.fetch, events = [];"
        "let sent;"
        "const requested = new Promise((resolve) => { sent = resolve; });"
        "window.fetch = (input, init) => {"
        "  if (!String(input).endsWith('/api/auth/login')) return realFetch(input, init);"
        "  sent();"
        "  return realFetch(input, init);"
        "};"
        "try {"
        "  const login = c.login('alice', 'authsocket-demo').catch((error) => error.code);"
        "  await requested;"
        "  c.addEventListener('state', (e) => events.push(e.detail));"
        "  c.close();"
        "  return { outcome: await login, state: c.state, events };"
        "} finally { window.fetch = realFetch; }",
        timeout=20,
    )
    assert logging_in == {
        "outcome": "cancelled",
        "state": "signed-out",
        "events": [
            {"state": "signed-out", "previous": "connecting", "reason": "closed"}
        ],
    }, logging_in

    never = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        f"const c = new AuthSocket({{ channelName: '{CHANNEL}' }}), events = [];"
        "c.addEventListener('state', (e) => events.push(e.detail));"
        "c.close();"
        "return { state: c.state, events };"
    )
    assert never == {"state": "signed-out", "events": []}, never


def test_a_client_reconnected_after_close_hears_the_other_tabs(server, browsers):
    """Two tabs of one browser. Tab 1's client is closed and reconnected;
    tab 2's client then resumes the shared session: its token reaches tab 1,
    and so does its logout, while tab 1 has no socket to hear a 4403 on.
    Closed again, tab 1's client hears the channel no more."""
    first = browsers.context("alice-tab1").open()
    first.js_async(
        isolated_client() + ALICE_LIVE + "c.close(); c.reconnect();" + STATE_REACHED,
        "live",
        timeout=20,
    )
    second = browsers.tab(first, "alice-tab2").open()
    token = second.js_async(
        isolated_client()
        + "await c.resume();"
        + STATE_REACHED
        + "return c.accessToken;",
        "live",
        timeout=20,
    )
    first.wait_for(
        lambda _d: first.js("return window.__c.accessToken") == token,
        message="the token tab 2 shared never reached tab 1's reopened client",
    )

    # Tab 1 loses its socket and cannot open another (the server out of its
    # reach): no 4403 can tell it of the logout, only the channel can.
    first.js(
        "window.__RealWebSocket = window.WebSocket;"
        "window.WebSocket = class { static OPEN = 1;"
        "  constructor() { this.readyState = 0; } send() {} close() {} };"
        "window.__c._ws.close(3000);"
    )
    wait_client_state(first, "reconnecting")
    second.js_async("await window.__c.logout();")
    wait_client_state(first, "signed-out")
    first.js("window.WebSocket = window.__RealWebSocket;")
    assert first.js("return window.__states.at(-1).reason") == (
        "signed_out_in_another_tab"
    )

    # Opened again by login(), closed again: the channel is let go. A probe
    # made after the client's own channel gets each message after it would.
    before = first.js_async(
        "const c = window.__c;"
        "await c.login('alice', 'authsocket-demo');" + STATE_REACHED + "c.close();"
        "window.__heard = new Promise((resolve) => {"
        f"  new BroadcastChannel('{CHANNEL}').onmessage = (e) =>"
        "    e.data?.type === 'token' && resolve();"
        "});"
        "return c.accessToken;",
        "live",
        timeout=20,
    )
    second.js_async("await window.__c.login('alice', 'authsocket-demo');", timeout=20)
    after = first.js_async(
        "await window.__heard;"
        "return { token: window.__c.accessToken, state: window.__c.state };"
    )
    assert after == {"token": before, "state": "offline"}, after


def test_a_closed_clients_logout_still_reaches_the_other_tabs(server, browsers):
    """close() stops hearing the channel, not speaking on it: a logout made
    afterwards ends the session, and the other tabs must learn which."""
    first = browsers.context("alice-tab1").open()
    sid = first.js_async(
        isolated_client() + ALICE_LIVE + "c.close(); return c.sid;", timeout=20
    )
    second = browsers.tab(first, "alice-tab2").open()
    second.js(
        "window.__signedOut = new Promise((resolve) => {"
        f"  new BroadcastChannel('{CHANNEL}').onmessage = (e) =>"
        "    e.data?.type === 'signed-out' && resolve(e.data.sid);"
        "});"
    )
    first.js_async("await window.__c.logout();", timeout=20)
    assert first.js("return window.__c.state") == "signed-out"
    heard = second.js_async("return await window.__signedOut;")
    assert heard == sid


@pytest.mark.parametrize("pending", ["refresh", "ticket"])
def test_reconnect_right_after_close_is_not_lost_to_the_closed_work(
    server_factory, browsers, pending
):
    """close() comes while a refresh (or, in ticket mode, an open waiting for
    its ticket) is on its way; reconnect() follows at once. That old work
    ends `cancelled` when its answer comes: the reopened client must not wait
    on it or take it for its own, and must get a live socket."""
    server = server_factory(AUTHSOCKET_ACCESS_TTL=5)
    page = browsers.context("alice", server).open()
    held = f"/api/auth/{pending}"
    page.js_async(
        isolated_client("ticket" if pending == "ticket" else "subprotocol")
        + ALICE_LIVE
        # The first request to `held` waits for `window.__release()`.
        + "const realFetch = window.fetch, held = arguments[0];"
        "let sent, gate = new Promise((resolve) => { window.__release = resolve; });"
        "window.__held = new Promise((resolve) => { sent = resolve; });"
        "window.fetch = async (input, init) => {"
        "  if (!gate || !String(input).endsWith(held)) return realFetch(input, init);"
        "  const wait = gate; gate = null; sent();"
        "  await wait;"
        "  return realFetch(input, init);"
        "};",
        held,
        timeout=20,
    )
    if pending == "refresh":
        # The timed refresh goes out (and is held); the server's `auth.expiring`
        # then says the token is inside the window where an open refreshes first.
        page.js_async(
            "const c = window.__c;"
            "const expiring = new Promise((resolve) => c.addEventListener('socket', (e) =>"
            "  e.detail.phase === 'expiring' && resolve()));"
            "await window.__held; await expiring;"
            "c.close(); c.reconnect(); window.__release();",
            timeout=20,
        )
    else:
        page.js_async(
            "const c = window.__c;"
            "c.close(); c.reconnect();"
            "await window.__held;"  # that open waits for its ticket
            "c.close(); c.reconnect(); window.__release();",
        )
    wait_client_state(page, "live")
    assert page.js_async("return await window.__c.ping();") > 0


def test_a_closed_client_refreshed_on_demand_arms_no_timer(server, browsers):
    """refresh() (or an api() call that needs one) still works on a closed
    client, but arms no timer: a closed client never refreshes by itself,
    rotating the cookie every tab shares behind the page's back."""
    page = browsers.context("alice").open()
    page.js_async(isolated_client() + ALICE_LIVE, timeout=20)
    result = page.js_async(
        "const c = window.__c, before = c.accessToken;"
        "c.close();"
        "const realFetch = window.fetch, realSetTimeout = window.setTimeout;"
        "let refreshes = 0;"
        "window.fetch = (input, init) => {"
        "  if (String(input).endsWith('/api/auth/refresh')) refreshes++;"
        "  return realFetch(input, init);"
        "};"
        "const armed = [];"
        "try {"
        # Keep every timer set meanwhile instead of scheduling it.
        "  window.setTimeout = (fn) => { armed.push(fn); return 0; };"
        "  await c.refresh();"
        "} finally { window.setTimeout = realSetTimeout; }"
        "const refreshed = c.accessToken !== before;"
        "for (const fn of armed) fn();"  # they fire
        "await c._refreshing?.catch(() => {});"
        "window.fetch = realFetch;"
        "return { refreshed, later: refreshes - 1, state: c.state };",
        timeout=20,
    )
    assert result == {"refreshed": True, "later": 0, "state": "offline"}, result


def test_a_client_reconnected_after_close_refreshes_on_time(server_factory, browsers):
    """close() stops the refresh timer; reconnect() must start it again, or
    the token is refreshed only when the server warns `auth.expiring` (a
    third of its lifetime left, not half), or not at all without a socket."""
    server = server_factory(AUTHSOCKET_ACCESS_TTL=5)
    page = browsers.context("alice", server).open()
    order = page.js_async(
        isolated_client() + ALICE_LIVE + "c.close();"
        "const events = [];"
        "c.addEventListener('socket', (e) => e.detail.phase === 'expiring' && events.push('expiring'));"
        "const realFetch = window.fetch;"
        "const refreshed = new Promise((resolve) => {"
        "  window.fetch = (input, init) => {"
        "    if (String(input).endsWith('/api/auth/refresh')) { events.push('refresh'); resolve(); }"
        "    return realFetch(input, init);"
        "  };"
        "});"
        "c.reconnect();"
        "try { await refreshed; } finally { window.fetch = realFetch; }"
        "return events;",
        timeout=WAIT,
    )
    assert order[0] == "refresh", order
