"""The demo page under what users and servers actually do to it.

Names and titles that are HTML or one very long word, a room deleted while it
is on screen, a message the server will not take, a logout in another tab,
sign-in failures, and the server going away: each is shown for what it is,
in text, without a widened page or a misleading word, and the keyboard focus
is never left on something hidden.
"""

import re

import pytest

from tests.browser.test_demo_panels import visible_text
from tests.servers import manage

pytestmark = pytest.mark.browser

LOBBY = "room:lobby"
# A username that is markup, then one word far wider than any column.
HOSTILE_NAME = "<img src=x onerror=window.__xss=1>" + "L" * 110
HOSTILE_TITLE = "<img src=x onerror=window.__xss=2>" + "T" * 160
HOSTILE_TEXT = "<b>bold?</b><script>window.__xss=3</script>"

HOSTILE_DATA = """
from accounts.models import User
from realtime.models import Membership, Room
user = User.objects.create_user({name!r}, password="authsocket-demo")
for slug, title, member in [("long", {title!r}, True), ("untitled", "", True),
                            ("bare", "", False)]:
    room = Room.objects.create(slug=slug, title=title, public=True)
    if member:
        Membership.objects.create(user=user, room=room)
"""


def focused_id(page) -> str:
    return page.js("return document.activeElement?.id ?? '';")


def test_user_names_and_room_titles_are_text_and_never_widen_the_page(server, browsers):
    """Usernames, room titles and message data are shown as text, never
    parsed as HTML; one long word wraps inside its column (the page does not
    scroll sideways); a room without a title is named by its slug."""
    manage(
        server.env,
        "shell",
        "-c",
        HOSTILE_DATA.format(name=HOSTILE_NAME, title=HOSTILE_TITLE),
    )
    page = browsers.signed_in("hostile", HOSTILE_NAME)
    page.wait_pane("room:long")
    page.wait_pane("room:untitled")
    page.send("room:long", HOSTILE_TEXT)
    page.js_async(
        "await window.authsocketDemo.client.publish('room:long', {html: arguments[0]});",
        HOSTILE_TEXT,
    )
    page.wait_for(lambda _d: len(page.messages("room:long")) == 2)

    assert page.js("return window.__xss === undefined") is True
    assert (
        page.js("return document.querySelectorAll('img, script:not([src]), b').length")
        == 0
    )
    assert visible_text(page, "who") == f"Signed in as {HOSTILE_NAME}"
    messages = page.messages("room:long")
    assert [m["from"] for m in messages] == [HOSTILE_NAME] * 2
    assert messages[0]["text"] == HOSTILE_TEXT
    assert HOSTILE_TEXT in messages[1]["text"]  # data without `text`: its JSON
    assert HOSTILE_TITLE in visible_text(page, "pane-room:long")

    widths = page.js(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"

    # Blank titles: the slug names the room in the list, its pane and its labels.
    assert visible_text(page, "room-untitled").startswith("untitled")
    assert page.js(
        "const pane = document.querySelector('[data-testid=\"pane-room:untitled\"]');"
        "return [pane.querySelector('.pane-title').textContent,"
        " pane.querySelector('.send-label').textContent];"
    ) == ["untitled", "Message to untitled"]
    assert visible_text(page, "room-bare").startswith("bare")
    assert (
        page.js(
            "return document.querySelector('[data-testid=\"join-bare\"]').getAttribute('aria-label');"
        )
        == "Join bare"
    )


DOOMED_ROOM = """
from accounts.models import User
from realtime.models import Membership, Room
room = Room.objects.create(slug="doomed", title="Doomed", public=False)
Membership.objects.create(user=User.objects.get(username="alice"), room=room)
print(room.pk)
"""


def admin_deletes_room(browsers, server, room_id: str) -> None:
    """The admin deletes the room in the Django admin, in the server's process
    (its signals tell the live sockets)."""
    from selenium.webdriver.common.by import By

    admin = browsers.context("admin")
    admin.driver.get(server.http + "/admin/login/")
    admin.driver.find_element(By.ID, "id_username").send_keys("admin")
    admin.driver.find_element(By.ID, "id_password").send_keys("authsocket-demo")
    admin.driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    admin.wait_visible("#site-name")
    admin.driver.get(f"{server.http}/admin/realtime/room/{room_id}/delete/")
    admin.driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    admin.wait_for(
        lambda d: (
            "/admin/realtime/room/" in d.current_url and "/delete/" not in d.current_url
        ),
        message="the room was not deleted",
    )


def test_a_room_deleted_while_viewed_leaves_the_list_and_closes_its_pane(
    server, browsers
):
    room_id = manage(server.env, "shell", "-c", DOOMED_ROOM).strip().splitlines()[-1]
    alice = browsers.signed_in("alice", "alice")
    alice.wait_pane("room:doomed")
    alice.wait_visible('[data-testid="room-doomed"]')

    admin_deletes_room(browsers, server, room_id)

    alice.wait_for(
        lambda _d: (
            "You can no longer read this room"
            in visible_text(alice, "pane-room:doomed")
        ),
        message="the pane never said the room is gone",
    )
    alice.wait_for(
        lambda _d: (
            not alice.js(
                "return !!document.querySelector('[data-testid=\"room-doomed\"]');"
            )
        ),
        message="the deleted room is still listed",
    )
    # Nothing to send, nobody to list, no "what you send here reaches everyone".
    for part in ("send-input", "online-empty", "messages-empty"):
        assert visible_text(alice, f"{part}-room:doomed") == "", part
    assert alice.state() == "live"


def test_a_message_too_long_or_too_large_is_kept_and_explained(
    server_factory, browsers
):
    """Over the page's 2,000 characters: not sent, not cut, and said so. Over
    the server's AUTHSOCKET_MAX_MESSAGE_BYTES (the socket closes with 4413):
    the page says the message was too large, not just "disconnected"."""
    from selenium.webdriver.common.by import By

    server = server_factory(AUTHSOCKET_MAX_MESSAGE_BYTES=1000)
    alice = browsers.signed_in("alice", "alice", server)
    alice.wait_pane(LOBBY)
    field = alice.driver.find_element(
        By.CSS_SELECTOR, f'[data-testid="send-input-{LOBBY}"]'
    )
    status = f'[data-testid="pane-{LOBBY}"] .pane-status'

    # Typed (and so pasted): a browser's maxlength would cut it silently.
    field.send_keys("a" * 2100)
    alice.click(f"send-{LOBBY}")
    alice.wait_visible(status)
    assert "2100 characters, at most 2000" in alice.js(
        "return document.querySelector(arguments[0]).textContent;", status
    )
    assert len(field.get_attribute("value")) == 2100
    assert alice.texts(LOBBY) == []

    # 1,990 characters of two bytes each: under the page's limit, over the server's.
    alice.js("arguments[0].value = arguments[1];", field, "é" * 1990)
    alice.click(f"send-{LOBBY}")
    alice.wait_for(
        lambda _d: (
            "too large"
            in alice.js(
                "return document.querySelector(arguments[0]).textContent;", status
            )
        ),
        message="the page never said the message was too large",
    )
    text = alice.js("return document.querySelector(arguments[0]).textContent;", status)
    assert "4413" in text, text
    assert field.get_attribute("value") == "é" * 1990  # kept, to be shortened
    alice.wait_state("live", timeout=20)  # and the socket comes back by itself


def test_a_logout_in_another_tab_is_named_and_focus_follows_the_forms(server, browsers):
    """Tab 1 logs out: its socket and tab 2's close with 4403, and tab 2
    learns of it first by that close. Tab 2 must not claim it was "another
    device or an admin". Keyboard focus moves to what replaced the form or
    button it was on: "Signed in as …" after signing in, the username after
    signing out."""
    first = browsers.signed_in("alice-tab1", "alice")
    assert focused_id(first) == "who"  # the Sign in button it was on is hidden
    second = browsers.tab(first, "alice-tab2").open()
    second.wait_state("live")
    second.wait_pane(LOBBY)

    first.click("logout")
    first.wait_state("signed-out")
    second.wait_state("signed-out")
    alert = second.wait_visible('[data-testid="alert"]').text
    assert "another tab" in alert, alert
    assert focused_id(first) == "username"


def test_sign_in_failures_say_what_to_do_and_never_which_part_was_wrong(
    server_factory, browsers
):
    server = server_factory(AUTHSOCKET_LOGIN_THROTTLE="2/hour")
    page = browsers.context("anonymous", server).open()

    def failure(username: str, password: str) -> str:
        page.js("document.getElementById('login-error').hidden = true;")
        page.login(username, password)
        return page.wait_visible('[data-testid="login-error"]').text

    # A username of spaces is no username: nothing is sent to the server.
    assert failure("   ", "whatever") == "Enter a username."
    # An unknown user and a wrong password read the same.
    wrong = failure("alice", "not-the-password")
    assert wrong == failure("nobody-by-this-name", "not-the-password")
    assert failure("alice", "not-the-password") == wrong
    # The third attempt within the hour is throttled: the server's own wait
    # (an hour here), not "a minute".
    throttled = failure("alice", "not-the-password")
    wait = re.search(r"Too many attempts\. .* (\d+) seconds", throttled)
    assert wait and int(wait.group(1)) > 3000, throttled

    server.stop()
    assert "cannot be reached" in failure("bob", "authsocket-demo")
    assert page.state() == "signed-out"


def test_while_the_server_is_down_the_page_says_so_and_who_is_online_is_unknown(
    server, browsers
):
    alice = browsers.signed_in("alice", "alice")
    alice.wait_pane(LOBBY)
    alice.wait_for(lambda _d: visible_text(alice, f"online-{LOBBY}") == "alice (you)")

    server.stop()
    alice.wait_state("reconnecting")
    alice.wait_for(
        lambda _d: (
            visible_text(alice, f"online-empty-{LOBBY}")
            == "Not known while the connection is down."
        ),
        message="an empty online list while down reads as 'nobody'",
    )
    alice.wait_for(lambda _d: "cannot be reached" in visible_text(alice, "alert"))

    server.start()
    alice.wait_state("live", timeout=40)
    alice.wait_for(lambda _d: visible_text(alice, f"online-{LOBBY}") == "alice (you)")
    assert visible_text(alice, f"online-empty-{LOBBY}") == ""
    assert visible_text(alice, "alert") == ""
