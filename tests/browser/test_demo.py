"""The demo page and client.js in headless Chromium against a real daphne (issue 5).

Demo data (docs/protocol.md §5): alice and bob are members of the private room `team`,
carol is not and cannot join it; everyone is in the public room `lobby`.
"""

import signal
import time

import pytest

from tests.browser.conftest import ROOT
from tests.browser.isolated import welcoming_socket
from tests.http import QuietHandler, http_origin
from tests.servers import manage

pytestmark = pytest.mark.browser

LOBBY = "room:lobby"
TEAM = "room:team"


def test_room_message_reaches_members_and_not_carol(
    server, browsers, notify, docs_screenshot
):
    notify(
        server, "alice", "Welcome! Stored before you signed in, replayed on connect."
    )
    alice = browsers.signed_in("alice", "alice")
    alice.wait_message(
        "user", "Welcome! Stored before you signed in, replayed on connect."
    )
    bob = browsers.signed_in("bob", "bob")
    carol = browsers.signed_in("carol", "carol")

    for member in (alice, bob):
        member.wait_visible('[data-testid="room-team"] .tag.member')
        member.wait_pane(TEAM)
    alice.send(TEAM, "hello team, from alice")
    bob.wait_message(TEAM, "hello team, from alice")
    alice.wait_message(TEAM, "hello team, from alice")
    assert bob.messages(TEAM)[-1]["from"] == "alice"
    bob.send(TEAM, "hi alice")
    alice.wait_message(TEAM, "hi alice")

    carol.wait_visible('[data-testid="room-lobby"]')
    assert (
        carol.js("return document.querySelector('[data-testid=\"room-team\"]')") is None
    )
    assert (
        carol.js("return document.querySelector('[data-testid=\"pane-room:team\"]')")
        is None
    )
    joined = carol.js_async(
        "try { await window.authsocketDemo.client.api('/api/rooms/team/membership',"
        " {method: 'POST'}); return 'joined'; } catch (e) { return [e.status, e.code]; }"
    )
    assert joined == [404, "not_found"]
    # Nor can carol read it over the socket: the same `forbidden` as a missing room.
    refused = carol.js_async(
        "const c = window.authsocketDemo.client;"
        "return await new Promise((resolve) => {"
        "  c.addEventListener('subscription', (e) => {"
        "    if (e.detail.stream === 'room:team') resolve(e.detail.status + ':' + (e.detail.reason || ''));"
        "  });"
        "  c.subscribe('room:team', {since: 0});"
        "});"
    )
    assert refused == "unsubscribed:forbidden"
    carol.wait_for(lambda _d: carol.js("return document.body.dataset.rooms"))
    shown = carol.js("return document.body.innerText")
    assert "hello team, from alice" not in shown
    assert "Team" not in shown and "Secret" not in shown, shown
    # Why carol sees fewer rooms, without naming the ones she cannot see.
    hint = carol.js(
        "return document.querySelector('[data-testid=\"rooms-hint\"]').textContent"
    )
    assert hint == "You see public rooms and the private rooms you belong to."

    alice.send(LOBBY, "lobby is for everyone")
    carol.wait_message(LOBBY, "lobby is for everyone")
    for page in (alice, bob, carol):
        page.screenshot("live")
    docs_screenshot(alice, "signed-in")
    docs_screenshot(carol, "carol")


def test_log_out_everywhere_signs_out_the_other_context(server, browsers):
    first = browsers.signed_in("alice-1", "alice")
    second = browsers.signed_in("alice-2", "alice")
    first.screenshot("live")

    second.click("logout-all")
    second.wait_state("signed-out")
    # The first context's socket is closed by the server (4403), not by a tab.
    first.wait_state("signed-out", timeout=5)
    first.wait_visible("#login-form")
    assert first.js("return document.getElementById('app').hidden") is True
    first.screenshot("signed-out")
    assert any("signed-out (revoked)" in line for line in first.log_lines())
    # And its refresh cookie is dead too: a reload does not resume.
    first.open()
    assert first.state() == "signed-out"


def test_sessions_panel_logs_out_one_session_then_all_others(server, browsers):
    main = browsers.signed_in("alice-main", "alice")
    phone = browsers.signed_in("alice-phone", "alice")
    laptop = browsers.signed_in("alice-laptop", "alice")
    phone_sid = phone.client("c.sid")

    main.click("sessions-reload")
    main.wait_for(
        lambda _d: len(main.js(SESSION_ROWS)) == 3, message="three sessions listed"
    )
    rows = main.js(SESSION_ROWS)
    assert [row["current"] for row in rows].count("true") == 1
    main.screenshot("sessions")

    main.js(
        'document.querySelector(\'[data-testid="session"][data-sid="\' + arguments[0] + \'"]'
        ' [data-testid="revoke-session"]\').click();',
        phone_sid,
    )
    phone.wait_state("signed-out", timeout=5)
    assert laptop.state() == "live"

    main.click("logout-others")
    laptop.wait_state("signed-out", timeout=5)
    main.wait_for(
        lambda _d: len(main.js(SESSION_ROWS)) == 1, message="only this session left"
    )
    assert main.state() == "live"


SESSION_ROWS = (
    "return Array.from(document.querySelectorAll('[data-testid=\"session\"]'))"
    ".map((li) => ({sid: li.dataset.sid, current: li.dataset.current}));"
)


def test_token_renewal_keeps_the_socket_live(server_factory, browsers):
    # Leeway 0: without renewal the server would close with 4401 after 5 s.
    server = server_factory(AUTHSOCKET_ACCESS_TTL=5, AUTHSOCKET_LEEWAY=0)
    alice = browsers.signed_in("alice", "alice", server)
    bob = browsers.signed_in("bob", "bob", server)
    alice.wait_pane(LOBBY)
    bob.wait_pane(LOBBY)

    # After each renewal of alice's socket, a message still goes both ways.
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < 15:
        renewed = alice.client("c.stats.renewals")
        alice.wait_for(
            lambda _d, before=renewed: alice.client("c.stats.renewals") > before,
            timeout=6,
            message="the socket was not renewed within the 5 s token lifetime",
        )
        sent += 1
        alice.send(LOBBY, f"tick {sent}")
        bob.wait_message(LOBBY, f"tick {sent}")
        bob.send(LOBBY, f"tock {sent}")
        alice.wait_message(LOBBY, f"tock {sent}")
        if sent == 2:
            alice.screenshot("renewed")

    for page in (alice, bob):
        assert page.state() in ("live", "renewing")
        stats = page.client("c.stats")
        assert stats["connects"] == 1, f"{page.name} reconnected: {page.log_lines()}"
        assert stats["renewals"] >= 3, (stats, page.log_lines())
        assert not any("reconnecting" in line for line in page.log_lines())
    assert sent >= 4, sent
    expected = [text for n in range(1, sent + 1) for text in (f"tick {n}", f"tock {n}")]
    assert bob.texts(LOBBY)[-2 * sent :] == expected
    alice.screenshot("live-after-15s")


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"]
)
def test_reconnect_replays_messages_stored_while_down(
    server, browsers, notify, stop_signal
):
    alice = browsers.signed_in("alice", "alice")
    notify(server, "alice", "before the restart")
    # Without REDIS_URL the command cannot reach the server process live, so
    # this one also shows the replay on a fresh subscribe; reload to see it.
    alice.open()
    alice.wait_state("live")
    alice.wait_message("user", "before the restart")

    server.stop(stop_signal)
    alice.wait_state("reconnecting", timeout=10)
    alice.screenshot("reconnecting")
    missed = [f"missed {n}" for n in range(1, 4)]
    for text in missed:
        notify(server, "alice", text)
    server.start()

    alice.wait_state("live", timeout=40)
    # SIGTERM drains with 4503 (authsocket.serve); SIGKILL drops the TCP: 1006.
    why = "server_restarting" if stop_signal == signal.SIGTERM else "dropped_1006"
    assert any(f"reconnecting ({why})" in line for line in alice.log_lines())
    code = 4503 if stop_signal == signal.SIGTERM else 1006
    closes = alice.js(
        "return Array.from(document.querySelectorAll('#timeline [data-phase=\"closed\"]'))"
        ".map((li) => li.textContent);"
    )
    assert any(
        f"closed {code}" in line and "reconnect with backoff" in line for line in closes
    ), closes
    alice.wait_message("user", missed[-1], timeout=10)
    texts = alice.texts("user")
    assert texts == ["before the restart", *missed], texts
    ids = [message["id"] for message in alice.messages("user")]
    assert ids == sorted(set(ids)), ids
    alice.screenshot("reconnected")


def test_two_tabs_refreshing_at_the_same_moment_stay_signed_in(server, browsers):
    first = browsers.signed_in("alice-tab1", "alice")
    second = browsers.tab(first, "alice-tab2").open()
    second.wait_state("live")  # resumed from the shared refresh cookie

    at = first.js("return Date.now() + 1500;")
    for tab in (first, second):
        tab.js(
            "const c = window.authsocketDemo.client; window.__refresh = null;"
            "setTimeout(() => c.refresh().then((r) => { window.__refresh = r; },"
            " (e) => { window.__refresh = 'error:' + e.code; }), arguments[0] - Date.now());",
            at,
        )
    for tab in (first, second):
        tab.wait_for(
            lambda _d, t=tab: t.js("return window.__refresh"), message="refresh done"
        )
    outcomes = sorted(
        [first.js("return window.__refresh"), second.js("return window.__refresh")]
    )
    assert not any(outcome.startswith("error") for outcome in outcomes), outcomes
    for tab in (first, second):
        tab.wait_state("live")

    for tab in (first, second):
        tab.round_trip()
    second.open()  # the cookie still resumes: nothing was revoked as reuse
    second.wait_state("live")
    first.screenshot("tab1-live")
    second.screenshot("tab2-live")


def test_token_rotated_is_answered_by_taking_the_winners_token(server, browsers):
    # Without Web Locks two refreshes race with one cookie: the server answers
    # the loser `token_rotated` (docs/protocol.md §2), which must not sign it out.
    alice = browsers.signed_in("alice", "alice")
    result = alice.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const a = new AuthSocket({ useLocks: false });"
        "const b = new AuthSocket({ useLocks: false });"
        "const outcomes = await Promise.all([a.refresh(), b.refresh()]);"
        "const tokens = [a.accessToken !== null, b.accessToken !== null];"
        "const rotated = a.stats.rotated + b.stats.rotated;"
        "const states = [a.state, b.state]; a.close(); b.close();"
        "return { outcomes: outcomes.sort(), tokens, rotated, states };"
    )
    assert result["tokens"] == [True, True], result
    assert result["rotated"] == 1, result
    assert result["outcomes"] == ["refreshed", "shared"], result
    alice.open()
    alice.wait_state("live")


def test_subprotocol_transport_connects_and_delivers(server, browsers):
    alice = browsers.context("alice").open("?transport=subprotocol")
    alice.login("alice")
    alice.wait_state("live")
    assert alice.client("c.options.transport") == "subprotocol"
    alice.round_trip()


def test_wrong_password_keeps_the_login_form(server, browsers):
    page = browsers.context("anonymous").open()
    assert page.state() == "signed-out"
    page.screenshot("signed-out")
    page.login("alice", "not-the-password")
    page.wait_visible('[data-testid="login-error"]')
    assert page.state() == "signed-out"


def test_staff_see_the_admin_link_and_others_do_not(server, browsers):
    admin = browsers.signed_in("admin", "admin")
    admin.wait_visible('[data-testid="admin-link"]')
    bob = browsers.signed_in("bob", "bob")
    bob.wait_for(lambda _d: bob.js("return document.body.dataset.me") == "loaded")
    assert (
        bob.js("return document.querySelector('[data-testid=\"admin-link\"]').hidden")
        is True
    )
    link = admin.wait_visible('[data-testid="admin-link"]')
    assert link.get_attribute("href") == server.http + "/admin/"


def test_staff_notification_reaches_the_users_page_live(server, browsers):
    bob = browsers.signed_in("bob", "bob")
    admin = browsers.signed_in("admin", "admin")
    status = admin.js_async(
        "await window.authsocketDemo.client.api("
        "  '/api/users/' + arguments[0] + '/notify',"
        "  {method: 'POST', body: {data: {text: 'Your build is green'}}});"
        "return 'sent';",
        bob.client("c.user.id"),
    )
    assert status == "sent"
    bob.wait_message("user", "Your build is green")
    assert bob.messages("user")[-1]["from"] == "server"
    bob.screenshot("notified")


def test_refused_handshake_with_good_credentials_gives_up_after_bounded_tries(
    server_factory, browsers
):
    # The page's origin is not allowed for sockets: every handshake is refused
    # (1006 before open) while /api/me says the credentials are fine (§4.3).
    server = server_factory(AUTHSOCKET_ALLOWED_ORIGINS="http://elsewhere.invalid")
    page = browsers.context("alice", server).open()
    result = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const c = new AuthSocket({ maxRefusals: 2, backoffBaseMs: 50, backoffCapMs: 200,"
        "  channelName: 'isolated' });"
        "const states = [];"
        "c.addEventListener('state', (e) => states.push(e.detail.state));"
        "await c.login('alice', 'authsocket-demo');"
        "await new Promise((resolve) => c.addEventListener('state', (e) => {"
        "  if (e.detail.state === 'offline' || e.detail.state === 'signed-out') resolve(); }));"
        "c.close();"
        "return { states, final: states[states.length - 1] };",
        timeout=30,
    )
    assert result["final"] == "offline", result
    assert result["states"].count("reconnecting") == 2, result


# A server that answers `welcome` and closes with 1000 at once, every time.
CLOSING_SOCKET = welcoming_socket(
    "ClosingSocket", 1000, "window.__opened = (window.__opened || 0) + 1;"
)


def test_a_socket_closed_at_once_does_not_make_the_client_spin(server, browsers):
    # 1000 (and 4401) earn an immediate reconnect once (§4.3); a socket that
    # dies within a second of `welcome` does not, or the client would spin.
    page = browsers.context("alice").open()
    result = page.js_async(
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
        "await c.login('alice', 'authsocket-demo');"
        "const real = window.WebSocket;"
        + CLOSING_SOCKET
        + "window.__opened = 0; window.WebSocket = ClosingSocket;"
        "try {"
        "  c._closeSocket(1000); c.reconnect();"
        "  await new Promise((resolve) => setTimeout(resolve, 2000));"
        "} finally { window.WebSocket = real; c.close(); }"
        "return window.__opened;",
    )
    assert 0 < result <= 10, f"{result} sockets opened in 2 s"


@pytest.fixture
def app_origin():
    """Another site's front end: a blank page and client.js, on a port of its own.

    Not the demo page: its Content-Security-Policy allows only its own origin.
    """
    client_js = (ROOT / "static" / "authsocket" / "client.js").read_bytes()
    pages = {
        "/": (b"<!doctype html><title>app</title>", "text/html"),
        "/client.js": (client_js, "text/javascript"),
    }

    class Handler(QuietHandler):
        def do_GET(self):
            body, kind = pages.get(self.path, (b"", "text/plain"))
            self.answer(200 if body else 404, body, kind)

    with http_origin(Handler) as origin:
        yield origin


def test_the_refresh_cookie_reaches_an_api_on_another_origin_of_the_site(
    server_factory, browsers, app_origin
):
    # `baseUrl` on another origin of the same site (another port), allowed by
    # AUTHSOCKET_CORS_ORIGINS: the cookie-mode login must store the refresh
    # cookie and `refresh`/`resume` must send it (§2 cookie mode).
    api = server_factory(
        AUTHSOCKET_CORS_ORIGINS=app_origin, AUTHSOCKET_ALLOWED_ORIGINS=app_origin
    )
    page = browsers.context("alice", api)
    page.driver.get(app_origin + "/")
    result = page.js_async(
        "const { AuthSocket } = await import('/client.js');"
        "const options = { baseUrl: arguments[0] };"
        "const first = new AuthSocket(options);"
        "await first.login('alice', 'authsocket-demo');"
        "const refreshed = await first.refresh();"
        "first.close();"
        "const second = new AuthSocket(options);"
        "const resumed = await second.resume();"
        "await new Promise((resolve) => {"
        "  if (second.state === 'live') resolve();"
        "  second.addEventListener('state', (e) => e.detail.state === 'live' && resolve());"
        "});"
        "const user = second.user.username; second.close();"
        "return { refreshed, resumed, user };",
        api.http,
        timeout=20,
    )
    assert result == {"refreshed": "refreshed", "resumed": True, "user": "alice"}


def test_expired_socket_is_refreshed_and_reconnected(server_factory, browsers):
    # 4401 (docs/protocol.md §4.3): the token ran out with no `auth` frame; the client
    # refreshes and reconnects by itself instead of signing out.
    server = server_factory(AUTHSOCKET_ACCESS_TTL=5, AUTHSOCKET_LEEWAY=0)
    alice = browsers.signed_in("alice", "alice", server)
    alice.js("window.authsocketDemo.client._timedRefresh = async () => {};")
    alice.wait_for(
        lambda _d: alice.client("c.stats.connects") >= 2 and alice.state() == "live",
        timeout=20,
        message="no reconnect after the socket expired",
    )
    assert any("token_expired" in line for line in alice.log_lines())
    closes = alice.js(
        "return Array.from(document.querySelectorAll('#timeline [data-phase=\"closed\"]'))"
        ".map((li) => li.textContent);"
    )
    assert any(
        "closed 4401: the access token expired" in line
        and "refresh, then reconnect" in line
        for line in closes
    ), closes
    alice.round_trip()


def test_too_many_connections_is_reported_and_retried_later(server_factory, browsers):
    server = server_factory(AUTHSOCKET_MAX_CONNECTIONS_PER_USER=1)
    first = browsers.signed_in("alice-1", "alice", server)
    second = browsers.context("alice-2", server).open()
    second.login("alice")
    second.wait_visible('[data-testid="alert"]')
    assert "Too many open connections" in second.js(
        "return document.getElementById('alert').textContent"
    )
    assert second.state() == "reconnecting"
    assert first.state() == "live"
    second.screenshot("too-many-connections")


def test_join_button_adds_a_public_room_and_its_pane(server, browsers):
    manage(
        server.env,
        "shell",
        "-c",
        "from realtime.models import Room;"
        "Room.objects.create(slug='random', title='Random', public=True)",
    )
    carol = browsers.signed_in("carol", "carol")
    # By keyboard: Enter on the focused button (WebDriver's key code U+E007).
    carol.wait_visible('[data-testid="join-random"]').send_keys("\ue007")
    carol.wait_visible('[data-testid="room-random"] .tag.member')
    carol.wait_pane("room:random")
    carol.send("room:random", "carol was here")
    carol.wait_message("room:random", "carol was here")
    carol.screenshot("joined")


# Holds the page's requests to a path until released, like a slow network:
# a way to photograph the short-lived states for real, not by faking them.
FETCH_GATE = """
if (!window.__gate) {
  window.__gate = {};
  const realFetch = window.fetch;
  window.fetch = (input, init) => {
    const url = String(input && input.url ? input.url : input);
    const path = Object.keys(window.__gate).find((held) => url.includes(held));
    if (!path) return realFetch(input, init);
    return new Promise((resolve) => {
      window.__gate[path].push(() => resolve(realFetch(input, init)));
    });
  };
}
"""
HOLD = "window.__gate[arguments[0]] = [];"
RELEASE = (
    "const queued = window.__gate[arguments[0]] || [];"
    "delete window.__gate[arguments[0]]; queued.forEach((go) => go());"
)


def test_screenshot_of_each_connection_state(server, browsers):
    page = browsers.context("alice").open()
    page.wait_state("signed-out")
    page.screenshot("signed-out")

    page.js(FETCH_GATE)
    page.js(HOLD, "/api/auth/ticket")
    page.login("alice")
    page.wait_state("connecting")
    # Signed in, no socket yet: the token panel says what will show up there.
    page.wait_visible('[data-testid="timeline-empty"]')
    page.screenshot("connecting")
    page.js(RELEASE, "/api/auth/ticket")
    page.wait_state("live")
    page.wait_pane(LOBBY)
    page.screenshot("live")

    page.js(HOLD, "/api/auth/refresh")
    page.js("window.authsocketDemo.client._timedRefresh();")
    page.wait_state("renewing")
    page.screenshot("renewing")
    page.js(RELEASE, "/api/auth/refresh")
    page.wait_state("live")

    server.stop()
    page.wait_state("reconnecting")
    page.screenshot("reconnecting")
    server.start()
    page.wait_state("live", timeout=40)

    page.click("logout")
    page.wait_state("signed-out")
    page.screenshot("signed-out-after-logout")
    shots = sorted(path.name for path in page.artifacts.glob("*.png"))
    assert len(shots) == 6, shots
