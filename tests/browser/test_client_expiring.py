"""client.js and the server's `auth.expiring` (docs/protocol.md §4.2).

The client renews at half of the token's lifetime: a refresh over HTTP, then
an `auth` frame with the new token on the live socket, answered `auth.ok`.
The server warns `auth.expiring` at a third. A warning that finds no renewal
under way is acted on at once (the refresh timer of a background tab may be
throttled); one that comes while a renewal is under way (its refresh
running, its `auth` on the way or waiting out `rate_limited`, or already
answered) is answered by that renewal. A second refresh for it would rotate
the refresh cookie every tab shares for nothing.

Against a real daphne with short tokens; `/api/auth/refresh` calls are
counted in the page, and the frames between the socket and the client are
held or reordered in the page to reach each case for sure.
"""

import pytest

from tests.browser.isolated import ALICE_LIVE

pytestmark = pytest.mark.browser

# The tokens' lifetime (s): the client refreshes about 6 s before expiry, the
# server warns 4 s before, so a renewal's `auth` frame can be held in between.
TTL = 12

# An isolated client of alice, live, as `c` (and `window.__c`). `refreshes()`
# is how many `/api/auth/refresh` requests the page has made since.
# `settled()` resolves once the client has no renewal under way: no refresh
# running, no `auth` waiting for its answer.
CLIENT = (
    "const { AuthSocket } = await import('/static/authsocket/client.js');"
    "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'expiring' });"
    "window.__c = c;" + ALICE_LIVE + "const realFetch = window.fetch;"
    "let refreshCount = 0;"
    "const refreshes = () => refreshCount;"
    "window.fetch = (input, init) => {"
    "  if (String(input).endsWith('/api/auth/refresh')) refreshCount++;"
    "  return realFetch(input, init);"
    "};"
    "const answered = () => new Promise((resolve) => c.addEventListener('socket', (e) =>"
    "  ['renewed', 'renew_failed'].includes(e.detail.phase) && resolve()));"
    "const settled = async () => {"
    "  while (c._refreshing !== null || c._hasPending('auth')) {"
    "    if (c._refreshing !== null) await c._refreshing.catch(() => {});"
    "    else await answered();"
    "  }"
    "};"
    "const renewed = () => new Promise((resolve) => c.addEventListener('socket', (e) =>"
    "  e.detail.phase === 'renewed' && resolve()));"
    # What the test checks at the end: the socket live, on the newest token,
    # past the `exp` it was warned of.
    "const outcome = (warned) => ({ refreshes: refreshes(), state: c.state,"
    "  connects: c.stats.connects, moved: c.socketExpiresAt > warned,"
    "  newest: c._connectedWith === c.accessToken });"
)

SETTLED_LIVE = {
    "refreshes": 1,
    "state": "live",
    "connects": 1,
    "moved": True,
    "newest": True,
}


def test_a_warning_while_the_auth_frame_is_on_its_way_refreshes_once(
    server_factory, browsers
):
    """The renewal's refresh is done and its `auth` frame is on its way (held
    in the page until the warning has reached the client): the warning of
    the old token is answered by that frame's `auth.ok`, not by a second
    refresh."""
    server = server_factory(AUTHSOCKET_ACCESS_TTL=TTL)
    page = browsers.context("alice", server).open()
    result = page.js_async(
        CLIENT + "const realSend = WebSocket.prototype.send, held = [];"
        "let warned = null, heldBeforeWarning = false;"
        # An `auth` frame goes out only once the client has had the warning.
        "WebSocket.prototype.send = function (text) {"
        "  if (warned === null && JSON.parse(text).type === 'auth') {"
        "    heldBeforeWarning = true; held.push([this, text]); return;"
        "  }"
        "  return realSend.call(this, text);"
        "};"
        "c.addEventListener('socket', (e) => {"
        "  if (e.detail.phase !== 'expiring' || warned !== null) return;"
        "  warned = e.detail.expiresAt;"
        # Sent a task later: the client acts on the warning with it pending.
        "  setTimeout(() => { for (const [ws, text] of held.splice(0)) realSend.call(ws, text); });"
        "});"
        "try {"
        "  await renewed(); await settled();"
        "} finally { WebSocket.prototype.send = realSend; window.fetch = realFetch; }"
        "return { ...outcome(warned), heldBeforeWarning };",
        timeout=40,
    )
    assert result == {**SETTLED_LIVE, "heldBeforeWarning": True}, result


def test_a_warning_while_the_auth_frame_waits_out_rate_limited_sends_it_at_once(
    server_factory, browsers
):
    """The renewal's `auth` frame was refused `rate_limited` (the socket's
    budget spent by 22 pings just before it) and waits for its retry when
    the warning comes: the client sends the new token at once, with no second
    refresh. The refusal is handed to the client only when the warning has
    come too, and the warning right after it."""
    server = server_factory(AUTHSOCKET_ACCESS_TTL=TTL, AUTHSOCKET_FRAME_RATE="10/s")
    page = browsers.context("alice", server).open()
    result = page.js_async(
        CLIENT + "const ws = c._ws, send = ws.send.bind(ws), receive = ws.onmessage;"
        "const auths = [];"
        "let refusal = null, warning = null, warned = null, sentAtOnce = null;"
        "ws.send = (text) => {"
        "  const frame = JSON.parse(text);"
        "  if (frame.type === 'auth') {"
        '    if (auths.length === 0) for (let i = 0; i < 22; i++) send(\'{"type":"ping"}\');'
        "    auths.push(frame);"
        "  }"
        "  send(text);"
        "};"
        "const deliver = () => {"
        "  if (refusal === null || warning === null) return;"
        "  receive(refusal);"  # the client arms its retry
        "  setTimeout(() => {"  # a task later, as from the network
        "    const before = auths.length;"
        "    receive(warning);"
        "    sentAtOnce = auths.length > before;"
        "  });"
        "};"
        "ws.onmessage = (e) => {"
        "  const frame = JSON.parse(e.data);"
        "  if (refusal === null && auths.length > 0 && frame.ref === auths[0].ref) {"
        "    refusal = e; deliver();"
        "  } else if (warning === null && frame.type === 'auth.expiring') {"
        "    warning = e; warned = frame.expires_at; deliver();"
        "  } else receive(e);"
        "};"
        "try {"
        "  await renewed(); await settled();"
        "} finally { window.fetch = realFetch; }"
        "return { ...outcome(warned), sentAtOnce,"
        "  refused: JSON.parse(refusal.data).code,"
        "  tokens: auths.map((frame) => frame.token === c.accessToken) };",
        timeout=40,
    )
    tokens = result.pop("tokens")
    assert result == {**SETTLED_LIVE, "sentAtOnce": True, "refused": "rate_limited"}, (
        result
    )
    assert len(tokens) >= 2 and all(tokens), tokens  # the one new token, again


def test_a_warning_that_crossed_the_auth_ok_is_not_refreshed_for(
    server_factory, browsers
):
    """The server warned of the old token just before it took the new one,
    and the warning reaches the client after the `auth.ok`: it is of an
    `exp` the socket has left, and nothing is refreshed for it."""
    server = server_factory(AUTHSOCKET_ACCESS_TTL=TTL)
    page = browsers.context("alice", server).open()
    result = page.js_async(
        CLIENT + "const ws = c._ws, send = ws.send.bind(ws), receive = ws.onmessage;"
        "let held = null, ref = null, warning = null, warned = null;"
        # The `auth` frame goes out when the warning has reached the page.
        "ws.send = (text) => {"
        "  const frame = JSON.parse(text);"
        "  if (frame.type === 'auth' && ref === null) {"
        "    ref = frame.ref;"
        "    if (warning === null) { held = text; return; }"
        "  }"
        "  send(text);"
        "};"
        # The warning is handed to the client right after that frame's answer.
        "ws.onmessage = (e) => {"
        "  const frame = JSON.parse(e.data);"
        "  if (warning === null && frame.type === 'auth.expiring') {"
        "    warning = e; warned = frame.expires_at;"
        "    if (held !== null) send(held);"
        "    return;"
        "  }"
        "  receive(e);"
        "  if (ref !== null && frame.ref === ref && warning !== null) setTimeout(() => receive(warning));"
        "};"
        "const expiring = new Promise((resolve) => c.addEventListener('socket', (e) =>"
        "  e.detail.phase === 'expiring' && resolve()));"
        "try {"
        "  await expiring; await settled();"
        "} finally { window.fetch = realFetch; }"
        "return outcome(warned);",
        timeout=40,
    )
    assert result == SETTLED_LIVE, result


def test_a_warning_with_no_renewal_under_way_refreshes_at_once(
    server_factory, browsers
):
    """The refresh timer never fires (as in a background tab, where timers
    are throttled): the server's warning makes the client refresh and renew
    the socket at once."""
    server = server_factory(AUTHSOCKET_ACCESS_TTL=TTL)
    page = browsers.context("alice", server).open()
    result = page.js_async(
        CLIENT + "clearTimeout(c._timers.refresh);"
        "const events = [];"
        "let warned = null;"
        "c.addEventListener('socket', (e) => {"
        "  if (e.detail.phase !== 'expiring') return;"
        "  warned = e.detail.expiresAt;"
        "  events.push('expiring');"
        # Right after the client acted on it.
        "  queueMicrotask(() => events.push(c._refreshing !== null ? 'refreshing' : 'idle'));"
        "});"
        "try {"
        "  await renewed(); await settled();"
        "} finally { window.fetch = realFetch; }"
        "return { ...outcome(warned), events };",
        timeout=40,
    )
    assert result == {**SETTLED_LIVE, "events": ["expiring", "refreshing"]}, result
