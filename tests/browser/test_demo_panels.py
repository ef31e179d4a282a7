"""The demo explains itself (issue 17): token lifetime, closes, hints, layout.

Each panel says what it shows and what to do when it is empty; the socket's
token counts down and every in-band renewal and every close is written down
with what the client did about it; the page paints before any script runs and
stays usable on a phone-sized screen.
"""

import json
import subprocess

import jwt
import pytest

from tests.browser import png
from tests.browser.conftest import CHROMIUM
from tests.servers import manage

pytestmark = pytest.mark.browser

LOBBY = "room:lobby"
BACKGROUND = (0xF6, 0xF7, 0xF9)  # --bg of demo.css
CARD = (0xFF, 0xFF, 0xFF)  # --card
# The Sign in button's fill, --accent; at opacity 0.6 on the card while disabled.
SIGN_IN_BUTTON = {(0x24, 0x53, 0xC9), (0x7B, 0x97, 0xDE)}
HEADER_PX = 120  # the top bar, painted with or without the sign-in form

TIMELINE = (
    "return Array.from(document.querySelectorAll('#timeline li'))"
    ".map((li) => ({phase: li.dataset.phase, text: li.textContent}));"
)


def visible_text(page, testid: str) -> str:
    """The text of a visible element; '' when it is hidden (or missing)."""
    return page.js(
        "const node = document.querySelector('[data-testid=\"' + arguments[0] + '\"]');"
        "return node && node.checkVisibility() ? node.textContent.replace(/\\s+/g, ' ') : '';",
        testid,
    )


def seconds_left(page) -> int | None:
    value = page.js("return document.getElementById('time-left').dataset.seconds")
    return int(value) if value else None


def headless_screenshot(url: str, path, profile):
    """What `chromium --headless --screenshot` sees right after load."""
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            f"--screenshot={path}",
            "--window-size=800,700",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return png.decode(path.read_bytes())


def assert_shows_the_sign_in_form(image: png.Image, shot) -> None:
    """The sign-in card, white on the demo's background, with its blue button.

    Not just "something": a page with only the top bar has a few dozen busy
    rows, and an error page has no card on --bg and no button.
    """
    busy = png.busy_rows(image, BACKGROUND, top=HEADER_PX)
    assert busy > 300, f"{busy} non-blank rows below the bar: {shot}"
    edge = image.width - 24  # inside the scrollbar, if there is one
    card_rows = sum(
        1
        for y in range(HEADER_PX, image.height)
        if image.pixel(8, y) == BACKGROUND
        and image.pixel(edge, y) == BACKGROUND
        and sum(image.pixel(x, y) == CARD for x in range(0, image.width, 4)) > 25
    )
    assert card_rows > 300, f"{card_rows} rows of a card on the page: {shot}"
    button = png.count(image, SIGN_IN_BUTTON, top=HEADER_PX)
    assert button > 2000, f"{button} pixels of the Sign in button: {shot}"


def test_first_paint_shows_the_sign_in_form(server, artifacts, tmp_path):
    shot = artifacts / "first-paint.png"
    image = headless_screenshot(server.http + "/", shot, tmp_path / "profile")
    assert image.width == 800
    assert_shows_the_sign_in_form(image, shot)


def test_the_server_markup_alone_shows_the_sign_in_form(server, browsers):
    # Scripts off: what the server sent is all there is, as before demo.js runs.
    page = browsers.context("no-scripts")
    page.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    page.driver.get(server.http + "/")
    page.wait_visible("#login-form")
    assert page.driver.find_element("id", "login-submit").is_enabled() is False
    shot = page.screenshot("scripts-disabled")
    assert_shows_the_sign_in_form(png.decode(shot.read_bytes()), shot)


def test_token_panel_counts_down_and_logs_each_renewal(
    server_factory, browsers, docs_screenshot
):
    server = server_factory(AUTHSOCKET_ACCESS_TTL=8, AUTHSOCKET_LEEWAY=0)
    alice = browsers.signed_in("alice", "alice", server)
    alice.wait_for(lambda _d: seconds_left(alice), message="no countdown")
    # One read of the panel, the socket's expiry (welcome's `expires_at`) and
    # the access token: the panel counts down what the server said, for the
    # server's 8-second token, not a lifetime the page assumed.
    shown, expires_at, access, now_ms = alice.client(
        "[document.getElementById('time-left').dataset.seconds,"
        " c.socketExpiresAt, c.accessToken, Date.now()]"
    )
    first = int(shown)
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 8, claims
    assert abs(first - (expires_at - now_ms / 1000)) <= 1.5, (first, expires_at)
    alice.wait_for(
        lambda _d: (seconds_left(alice) or first) < first,
        timeout=3,
        message="the countdown does not move",
    )
    assert "socket #1" in visible_text(alice, "timeline")

    alice.wait_for(
        lambda _d: sum(e["phase"] == "renewed" for e in alice.js(TIMELINE)) >= 2,
        timeout=20,
        message="two renewals never showed up",
    )
    entries = alice.js(TIMELINE)
    renewed = [e["text"] for e in entries if e["phase"] == "renewed"]
    assert all("auth.ok" in text and "not reconnected" in text for text in renewed)
    assert any(e["phase"] == "renewing" and "auth →" in e["text"] for e in entries)
    assert not any(e["phase"] == "closed" for e in entries), entries
    assert alice.client("c.stats.connects") == 1
    assert int(visible_text(alice, "renewals").split()[0]) >= 2
    # Each renewal moved the expiry forward: the countdown went back up.
    alice.wait_for(lambda _d: seconds_left(alice) >= 5, timeout=10)
    alice.send(LOBBY, "renewed in band: still socket #1")
    alice.wait_message(LOBBY, "renewed in band: still socket #1")
    alice.screenshot("renewed")
    docs_screenshot(alice, "renewal")


def test_revocation_shows_the_4403_close_and_sign_in_again(
    server, browsers, docs_screenshot
):
    phone = browsers.signed_in("alice-phone", "alice")
    laptop = browsers.signed_in("alice-laptop", "alice")
    laptop.wait_pane(LOBBY)
    hint = visible_text(laptop, "logout-all-hint")
    assert "4403" in hint and "every device" in hint, hint

    # The server API revokes the phone's session; its socket closes with 4403.
    laptop.js_async(
        "await window.authsocketDemo.client.revokeSession(arguments[0]);",
        phone.client("c.sid"),
    )
    phone.wait_state("signed-out", timeout=5)
    alert = phone.wait_visible('[data-testid="alert"]').text
    assert "closed 4403: the session was revoked" in alert, alert
    assert "stop; sign in again" in alert, alert
    phone.wait_visible("#login-form")
    phone.screenshot("revoked")
    docs_screenshot(phone, "revoked")
    assert laptop.state() == "live"


def test_panels_show_hints_and_empty_states(server, browsers, notify):
    manage(
        server.env,
        "shell",
        "-c",
        "from accounts.models import User; from realtime.models import Room, Membership;"
        "room = Room.objects.create(slug='quiet', title='Quiet', public=True);"
        "Membership.objects.create(room=room, user=User.objects.get(username='bob'))",
    )
    bob = browsers.signed_in("bob", "bob")
    bob.wait_pane("room:quiet")
    assert "No notifications yet" in visible_text(bob, "notifications-empty")
    how = visible_text(bob, "notifications-hint")
    for way in (
        "Send a notification to the selected users",
        "POST /api/server/publish",
        "manage.py notify <user> <text>",
    ):
        assert way in how, how
    assert "No messages yet" in visible_text(bob, "messages-empty-room:quiet")
    # The server's snapshot lists bob himself: no empty state for long.
    bob.wait_for(lambda _d: online(bob, "room:quiet") == ["bob"])
    assert "public rooms and the private rooms you belong to" in visible_text(
        bob, "rooms-hint"
    )
    assert "auth.ok" in visible_text(bob, "token-hint")
    bob.driver.find_element("css selector", "details.log summary").click()
    assert "reconnecting" in visible_text(bob, "log-hint")
    assert visible_text(bob, "log-empty") == ""  # the sign-in is logged already
    bob.screenshot("empty")

    # Each empty state goes as soon as there is something to show.
    bob.send("room:quiet", "first words")
    bob.wait_message("room:quiet", "first words")
    assert visible_text(bob, "messages-empty-room:quiet") == ""
    notify(server, "bob", "hello bob")
    bob.open()  # without REDIS_URL the command reaches the page on replay
    bob.wait_state("live")
    bob.wait_message("user", "hello bob")
    assert visible_text(bob, "notifications-empty") == ""


def test_someone_in_no_room_is_told_why_without_a_room_named(server, browsers):
    # Every room private and dave a member of none: the rooms panel is empty,
    # and neither it nor anything else on his page names a room he cannot see.
    manage(
        server.env,
        "shell",
        "-c",
        "from accounts.models import User; from realtime.models import Room;"
        "Room.objects.update(public=False);"
        "User.objects.create_user('dave', password='authsocket-demo')",
    )
    dave = browsers.signed_in("dave", "dave")
    dave.wait_for(lambda _d: dave.js("return document.body.dataset.rooms"))
    assert dave.js("return document.body.dataset.rooms") == "loaded"
    assert visible_text(dave, "rooms-empty") == "No rooms to show."
    assert visible_text(dave, "rooms-hint") == (
        "You see public rooms and the private rooms you belong to."
    )
    page = dave.js("return document.body.innerText")
    for title in ("Lobby", "Team", "Secret"):
        assert title not in page, (title, page)
    dave.screenshot("no-rooms")


def test_narrow_screen_stacks_the_panels_without_horizontal_scroll(
    server, browsers, docs_screenshot
):
    alice = browsers.context("alice")
    alice.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    alice.open().login("alice")
    alice.wait_state("live")
    alice.wait_pane(LOBBY)
    alice.send(LOBBY, "a-very-long-word-" * 12)  # must wrap, not widen the page
    alice.wait_message(LOBBY, "a-very-long-word-" * 12)

    layout = alice.js(
        "const box = (css) => document.querySelector(css).getBoundingClientRect();"
        "const root = document.documentElement;"
        "return {scroll: root.scrollWidth, client: root.clientWidth,"
        " rooms: box('.rooms'), pane: box('[data-testid=\"pane-room:lobby\"]'),"
        " token: box('.token'), messages: box('[data-testid=\"messages-room:lobby\"]')};"
    )
    assert layout["client"] == 390, layout
    assert layout["scroll"] <= layout["client"], layout
    # Stacked: one column, the token first, then rooms, then the room's pane.
    assert layout["token"]["bottom"] <= layout["rooms"]["top"], layout
    assert layout["rooms"]["bottom"] <= layout["pane"]["top"], layout
    assert abs(layout["rooms"]["left"] - layout["pane"]["left"]) < 1, layout
    assert layout["pane"]["right"] <= 390, layout
    alice.js("document.activeElement.blur(); window.scrollTo(0, 0);")
    alice.screenshot("narrow")
    # The rooms list and a room's pane, one above the other, as on a phone.
    docs_screenshot(alice, "narrow", start=".rooms")


def test_message_panes_grow_with_their_messages(server, browsers):
    alice = browsers.signed_in("alice", "alice")
    alice.wait_pane(LOBBY)
    height = alice.js(
        "return document.querySelector('[data-testid=\"messages-room:lobby\"]')"
        ".getBoundingClientRect().height;"
    )
    for n in range(12):
        alice.send(LOBBY, f"line {n}")
    alice.wait_message(LOBBY, "line 11")
    grown = alice.js(
        "const list = document.querySelector('[data-testid=\"messages-room:lobby\"]');"
        "return {height: list.getBoundingClientRect().height,"
        " scrolls: list.scrollHeight > list.clientHeight};"
    )
    # Twelve lines fit without an inner scrollbar: the pane grew.
    assert grown["height"] > height + 200, (height, grown)
    assert grown["scrolls"] is False, grown


# Presence frames (docs/protocol.md §4.4) fed to the client's frame handler,
# so the client's view and the "Online now" list are checked on cases the
# real server makes hard to reach. The list against the real server's
# presence: tests/browser/test_demo_presence.py.
def presence_frame(page, frame: dict) -> None:
    page.js("window.authsocketDemo.client._onFrame(arguments[0]);", json.dumps(frame))


def online(page, stream: str) -> list[str]:
    return page.js(
        "return Array.from(document.querySelectorAll("
        "'[data-testid=\"online-' + arguments[0] + '\"] > li'))"
        ".map((li) => li.firstChild.textContent);",
        stream,
    )


def test_presence_view_and_online_list_follow_the_frames(server, browsers):
    alice = browsers.context("alice").open()
    # Record what the page sends: the room subscribe must ask for presence.
    alice.js(
        "const send = WebSocket.prototype.send; window.__sent = [];"
        "WebSocket.prototype.send = function (data) {"
        " window.__sent.push(data); return send.call(this, data); };"
    )
    alice.login("alice")
    alice.wait_state("live")
    alice.wait_pane(LOBBY)
    alice.wait_for(
        lambda _d: any(
            frame.get("type") == "subscribe" and frame.get("stream") == LOBBY
            for frame in map(json.loads, alice.js("return window.__sent"))
        ),
        message="no subscribe to the lobby",
    )
    subscribes = [
        frame
        for frame in map(json.loads, alice.js("return window.__sent"))
        if frame.get("type") == "subscribe" and frame.get("stream") == LOBBY
    ]
    assert all(frame.get("presence") is True for frame in subscribes), subscribes
    # The server's own snapshot first, so it cannot overwrite the frames below.
    alice.wait_for(lambda _d: online(alice, LOBBY) == ["alice"])

    me = alice.client("c.user")
    bob = {"id": 901, "username": "bob"}
    carol = {"id": 902, "username": "carol"}
    presence_frame(
        alice,
        {
            "type": "presence",
            "stream": LOBBY,
            "users": [{**me, "connections": 1}, {**bob, "connections": 2}],
            "count": 2,
        },
    )
    assert online(alice, LOBBY) == ["alice", "bob"]
    for frame in (
        {"type": "presence.join", "stream": LOBBY, "user": carol},
        {"type": "presence.join", "stream": LOBBY, "user": carol},  # idempotent
    ):
        presence_frame(alice, frame)
    assert online(alice, LOBBY) == ["alice", "bob", "carol"]
    assert alice.client("c.presence('room:lobby').count") == 3
    for _ in range(2):
        presence_frame(alice, {"type": "presence.leave", "stream": LOBBY, "user": bob})
    assert online(alice, LOBBY) == ["alice", "carol"]
    assert alice.client("c.presence('room:lobby').count") == 2
    assert "(2)" in visible_text(alice, f"pane-{LOBBY}")
    alice.screenshot("presence")

    # A snapshot replaces the view; a stream not followed keeps none.
    presence_frame(
        alice,
        {
            "type": "presence",
            "stream": LOBBY,
            "users": [{**me, "connections": 1}],
            "count": 1,
        },
    )
    assert online(alice, LOBBY) == ["alice"]
    presence_frame(
        alice, {"type": "presence.join", "stream": "room:elsewhere", "user": bob}
    )
    assert alice.client("c.presence('room:elsewhere')") is None

    # Without a socket nobody is known to be anywhere: the list empties (seen
    # in the page as it happens: the client reconnects within a second).
    emptied = alice.js_async(
        "const list = document.querySelector("
        "'[data-testid=\"online-' + args[0] + '\"]');"
        "const seen = new Promise((resolve) => {"
        " const watch = new MutationObserver(() => {"
        "  if (!list.children.length) { watch.disconnect(); resolve("
        "   document.querySelector('[data-testid=\"online-empty-' + args[0] + '\"]')"
        "   .checkVisibility()); } });"
        " watch.observe(list, {childList: true}); });"
        "window.authsocketDemo.client._ws.close(1000);"
        "return await seen;",
        LOBBY,
    )
    assert emptied is True
