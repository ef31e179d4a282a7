"""client.js and the answers it gets: who they are about, and what they are.

A request made with one session's access token may be answered after that
session ended and another began on the same client (a slow network). The
answer's `401 revoked` is about the old token: it must not sign the new
session out. And an answer that is not the JSON the API sends (a front end's
page where the API was expected) is an error with a code, not a crash; a
socket frame of a type it does not know is ignored, whatever its name. And a
socket turned away with 4409 comes back after its long backoff plus jitter.
"""

import json

import pytest

from tests.browser.conftest import ROOT
from tests.browser.isolated import ALICE_LIVE, scripted_socket, welcoming_socket
from tests.browser.test_demo import FETCH_GATE, HOLD, RELEASE
from tests.http import QuietHandler, http_origin

pytestmark = pytest.mark.browser

SESSIONS = "/api/auth/sessions"


def test_a_late_401_for_the_previous_session_does_not_sign_out_the_next(
    server, browsers
):
    """alice's `GET /api/auth/sessions` is held in the page; alice signs out
    and carol signs in on the same client; then alice's request goes out, with
    alice's revoked token, and is answered 401 `revoked`. The call fails with
    that code, and carol stays signed in and live."""
    page = browsers.context("alice").open()
    page.js(FETCH_GATE)
    page.js(HOLD, SESSIONS)
    result = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
        "window.__c = c;" + ALICE_LIVE + "const stale = c.api(arguments[0]).then("
        "  () => 'answered', (error) => error.code);"
        "await c.logout();"
        "await c.login('carol', 'authsocket-demo');"
        "await new Promise((resolve) => {"
        "  if (c.state === 'live') resolve();"
        "  c.addEventListener('state', (e) => e.detail.state === 'live' && resolve());"
        "});"
        "const signedOut = [];"
        "c.addEventListener('state', (e) => signedOut.push(e.detail.reason));"
        + RELEASE
        + "const code = await stale;"
        # A round trip later: the new token still works.
        "const me = await c.api('/api/me').then((m) => m.username, (e) => e.code);"
        "return { code, me, state: c.state, user: c.user && c.user.username,"
        "  transitions: signedOut, access: c.accessToken !== null };",
        SESSIONS,
        timeout=30,
    )
    assert result == {
        "code": "revoked",
        "me": "carol",
        "state": "live",
        "user": "carol",
        "transitions": [],
        "access": True,
    }, result


@pytest.fixture
def fallback_origin():
    """A front end that answers every path with its page, 200 `text/html`
    (a single-page app's fallback route), `/api/…` included: what a client
    meets when the API is not routed where `baseUrl` says."""
    client_js = (ROOT / "static" / "authsocket" / "client.js").read_bytes()
    page = b"<!doctype html><title>app</title><p>the app</p>"

    class Handler(QuietHandler):
        def reply(self):
            length = int(self.headers.get("Content-Length") or 0)
            if b'"null-body"' in self.rfile.read(length):
                # An error whose JSON body is no object: `null`.
                self.answer(401, b"null", "application/json")
                return
            js = self.path == "/client.js"
            body = client_js if js else page
            self.answer(200, body, "text/javascript" if js else "text/html")

        do_GET = do_POST = reply

    with http_origin(Handler) as origin:
        yield origin


def test_a_page_where_json_was_expected_fails_cleanly(browsers, fallback_origin):
    """Login and refresh answered 200 with an HTML page: each call fails with
    an AuthSocketError (`bad_response`, transient like a proxy's 502 page), and
    a failed login leaves the client `signed-out` with no token, not stuck in
    `connecting`."""
    page = browsers.context("app")
    page.driver.get(fallback_origin + "/")
    result = page.js_async(
        "const { AuthSocket } = await import('/client.js');"
        "const c = new AuthSocket({ channelName: 'isolated' });"
        "const outcome = (call) => call.then("
        "  () => 'resolved',"
        "  (e) => ({ name: e.name, code: e.code ?? null, transient: e.transient ?? null }));"
        "const login = await outcome(c.login('alice', 'authsocket-demo'));"
        "const afterLogin = { state: c.state, token: c.accessToken ?? null };"
        "const refresh = await outcome(c.refresh());"
        "const nullBody = await outcome(c.login('null-body', 'x'));"
        "c.close();"
        "return { login, afterLogin, refresh, nullBody };",
        timeout=20,
    )
    failure = {"name": "AuthSocketError", "code": "bad_response", "transient": True}
    assert result == {
        "login": failure,
        "afterLogin": {"state": "signed-out", "token": None},
        "refresh": failure,
        # A 401 whose JSON body is `null`: the status still names the error.
        "nullBody": {"name": "AuthSocketError", "code": "http_401", "transient": False},
    }, result


@pytest.fixture
def throttling_origin():
    """Serves client.js, and answers login 429 with the `Retry-After` named
    by the username: what a proxy or a misconfigured server may send."""
    client_js = (ROOT / "static" / "authsocket" / "client.js").read_bytes()

    class Handler(QuietHandler):
        def do_GET(self):
            self.answer(200, client_js, "text/javascript")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            asked = json.loads(self.rfile.read(length))["username"]
            body = b'{"code": "throttled", "detail": "slow down"}'
            self.answer(429, body, "application/json", {"Retry-After": asked})

    with http_origin(Handler) as origin:
        yield origin


def test_a_retry_after_is_read_as_a_wait_of_at_most_a_minute(
    browsers, throttling_origin
):
    """A day, a value past what setTimeout can hold (it would fire at once),
    infinity and a far HTTP-date all wait a minute; a short wait is kept, and
    what is no wait at all (past, negative, junk) is none."""
    page = browsers.context("app")
    page.driver.get(throttling_origin + "/")
    waits = page.js_async(
        "const { AuthSocket } = await import('/client.js');"
        "const c = new AuthSocket({ channelName: 'isolated' });"
        "const waits = {};"
        "for (const asked of arguments[0]) {"
        "  waits[asked] = await c.login(asked, 'x').then("
        "    () => 'resolved', (e) => e.retryAfterMs);"
        "}"
        "c.close();"
        "return waits;",
        [
            "86400",
            "3000000",
            "1e999",
            "Fri, 01 Jan 2100 00:00:00 GMT",
            "5",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "-3",
            "soon",
        ],
        timeout=20,
    )
    assert waits == {
        "86400": 60000,
        "3000000": 60000,
        "1e999": 60000,
        "Fri, 01 Jan 2100 00:00:00 GMT": 60000,
        "5": 5000,
        "Thu, 01 Jan 1970 00:00:00 GMT": 0,
        "-3": 0,
        "soon": 0,
    }, waits


def test_frames_of_no_known_type_are_ignored(server, browsers):
    """The client ignores a frame type it does not know. Names that are
    also properties of every JavaScript object (`__proto__`, `constructor`,
    `__defineGetter__`, …) are frame types it does not know too: none of them
    may throw out of the socket's message handler, and the socket stays
    usable. So are frames that are JSON but not an object."""
    page = browsers.context("alice").open()
    result = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        + scripted_socket("ScriptedSocket")
        + "const real = window.WebSocket;"
        "window.WebSocket = ScriptedSocket;"
        "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
        "try {" + ALICE_LIVE + "} finally { window.WebSocket = real; }"
        "const thrown = [];"
        "for (const raw of arguments[0]) {"
        "  try { window.__server.onmessage({ data: raw }); }"
        "  catch (error) { thrown.push([raw, String(error)]); }"
        "}"
        "await c.ping();"
        "const state = c.state; c.close();"
        "return { thrown, state };",
        [
            "null",
            "[]",
            "42",
            '"welcome"',
            *(
                json.dumps({"type": name})
                for name in (
                    "__proto__",
                    "constructor",
                    "__defineGetter__",
                    "__defineSetter__",
                    "hasOwnProperty",
                    "toString",
                    "valueOf",
                )
            ),
        ],
        timeout=20,
    )
    assert result == {"thrown": [], "state": "live"}, result


REFUSING_SOCKET = welcoming_socket(
    "RefusingSocket", 4409, "window.__openedAt.push(performance.now());"
)


def test_the_long_backoff_after_4409_has_jitter(server, browsers):
    """docs/browser.md: 4409 and 4429 wait "a long backoff (30 s / 60 s with
    jitter)", so the sockets a server turned away do not all come back at the
    same instant. With `Math.random()` pinned near 1 the wait is well past
    `longBackoffMs` (at most half as long again), never exactly it."""
    page = browsers.context("alice").open()
    gaps = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated',"
        "  backoffBaseMs: 20, backoffCapMs: 40, longBackoffMs: 800 });"
        + ALICE_LIVE
        + "const real = window.WebSocket, random = Math.random;"
        + REFUSING_SOCKET
        + "window.__openedAt = []; window.WebSocket = RefusingSocket;"
        "Math.random = () => 0.999;"
        "try {"
        "  c._ws.close(3000);"  # the real socket drops; every later one is refused
        "  await new Promise((resolve) => {"
        "    const seen = () => window.__openedAt.length >= 4 ? resolve() : c.addEventListener("
        "      'socket', seen, { once: true });"
        "    seen();"
        "  });"
        "} finally { window.WebSocket = real; Math.random = random; c.close(); }"
        "const at = window.__openedAt;"
        "return at.slice(1).map((t, i) => t - at[i]);",
        timeout=20,
    )
    assert len(gaps) == 3, gaps
    assert all(1000 < gap < 1600 for gap in gaps), gaps


# A server that accepts and never welcomes (a stuck consumer): each socket
# opens, then says nothing. `window.__silent` keeps each one's close code
# (null while the client keeps it open); `window.__third` resolves when the
# client opens a third.
SILENT_SOCKET = """
window.__silent = [];
let thirdOpened;
window.__third = new Promise((resolve) => { thirdOpened = resolve; });
class SilentSocket {
  static OPEN = 1;
  constructor() {
    this.index = window.__silent.push(null) - 1;
    if (window.__silent.length === 3) thirdOpened();
    this.readyState = 0;
    setTimeout(() => { this.readyState = 1; this.onopen?.({}); }, 5);
  }
  send() {}
  close(code) { this.readyState = 3; window.__silent[this.index] = code; }
}
"""


def test_a_socket_never_welcomed_is_closed_and_tried_again(server, browsers):
    """The heartbeat runs only once live: without a bound on the wait for
    `welcome`, the client stayed `reconnecting` on an open socket for ever.
    After `requestTimeoutMs` it closes it (1000) and opens another."""
    page = browsers.context("alice").open()
    result = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated',"
        "  backoffBaseMs: 20, backoffCapMs: 40 });"
        + ALICE_LIVE
        + "c.options.requestTimeoutMs = 300;"
        "const real = window.WebSocket;"
        + SILENT_SOCKET
        + "window.WebSocket = SilentSocket;"
        "const reasons = [];"
        "c.addEventListener('state', (e) => reasons.push(e.detail.reason));"
        "try {"
        "  c._ws.close(3000);"  # the real socket drops; no later one is welcomed
        "  await window.__third;"
        "} finally { window.WebSocket = real; c.close(); }"
        "return { closes: window.__silent.slice(0, 2), reasons };",
        timeout=20,
    )
    assert result["closes"] == [1000, 1000], result
    assert "welcome_timeout" in result["reasons"], result
