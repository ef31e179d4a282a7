"""The demo page shows the signed-in user's data only, and keeps its lists bounded.

A request the page made for one user may be answered after that user signed
out and another signed in (a slow network): its answer belongs to nobody on
the page any more. A page left open in a busy room keeps only the latest
messages of each list, so it does not grow without end.
"""

import pytest

pytestmark = pytest.mark.browser

LOBBY = "room:lobby"

# Answers that arrive late, as on a slow network: the request goes out at
# once and the server answers it, but the page gets the answer only when the
# test releases it. `window.__late[path]` holds the next `left` answers of
# requests to exactly that path.
LATE_ANSWERS = """
if (!window.__late) {
  window.__late = {};
  const realFetch = window.fetch;
  window.fetch = (input, init) => {
    const answer = realFetch(input, init);
    const path = new URL(String(input && input.url ? input.url : input), location.href).pathname;
    const gate = window.__late[path];
    if (!gate || gate.left === 0) return answer;
    gate.left--;
    return answer.then((response) => new Promise((resolve) => {
      gate.queued.push(() => resolve(response));
    }));
  };
}
"""
HOLD_NEXT = "window.__late[arguments[0]] = { left: 1, queued: [] };"
ANSWERED = "return window.__late[arguments[0]].queued.length;"
RELEASE = "window.__late[arguments[0]].queued.splice(0).forEach((go) => go());"


def test_answers_for_the_previous_user_are_not_shown_to_the_next(server, browsers):
    """alice's rooms and sessions are answered, but reach the page only after
    she signed out and carol signed in on it: carol's page must not list
    alice's private room (docs/browser.md: "no room's name anywhere on the
    page") nor alice's sessions, with their "Log out this one" buttons."""
    page = browsers.context("shared").open()
    page.wait_state("signed-out")
    page.js(LATE_ANSWERS)
    for path in ("/api/rooms", "/api/auth/sessions"):
        page.js(HOLD_NEXT, path)
    page.login("alice")
    page.wait_state("live")
    alice_sid = page.client("c.sid")
    for path in ("/api/rooms", "/api/auth/sessions"):
        page.wait_for(
            lambda _d, p=path: page.js(ANSWERED, p) == 1,
            message=f"alice's {path} was never answered",
        )

    page.click("logout")
    page.wait_state("signed-out")
    page.login("carol")
    page.wait_state("live")
    page.wait_visible('[data-testid="room-lobby"]')
    page.wait_visible('[data-testid="session"]')
    carol_sid = page.client("c.sid")
    assert carol_sid != alice_sid

    for path in ("/api/rooms", "/api/auth/sessions"):
        page.js(RELEASE, path)
    # An HTTP round trip after the release: the released answers, already
    # received, have been read and handled by the time this one is.
    page.js_async("await window.authsocketDemo.client.api('/api/me');")

    assert (
        page.js("return document.querySelector('[data-testid=\"room-team\"]')") is None
    )
    assert (
        page.js("return document.querySelector('[data-testid=\"pane-room:team\"]')")
        is None
    )
    sids = page.js(
        "return Array.from(document.querySelectorAll('[data-testid=\"session\"]'),"
        " (li) => li.dataset.sid);"
    )
    assert sids == [carol_sid], (alice_sid, sids)
    assert page.state() == "live"


MESSAGES_KEPT = 200  # demo.js: the messages one list keeps


def test_a_message_list_keeps_only_the_latest_messages(server, browsers):
    """A page left open in a busy room: past MESSAGES_KEPT messages, the
    oldest leave the list as new ones come, so the page's memory stays
    bounded; the latest ones are all there, in order."""
    alice = browsers.signed_in("alice", "alice")
    alice.wait_pane(LOBBY)
    sent = MESSAGES_KEPT + 30
    alice.js_async(
        "const c = window.authsocketDemo.client;"
        "for (let n = 0; n < arguments[0]; n++) {"
        "  await c.api('/api/rooms/lobby/messages',"
        "    { method: 'POST', body: { data: { text: `line ${n}` } } });"
        "}",
        sent,
        timeout=60,
    )
    alice.wait_message(LOBBY, f"line {sent - 1}", timeout=30)
    texts = alice.texts(LOBBY)
    assert texts == [f"line {n}" for n in range(sent - MESSAGES_KEPT, sent)], (
        len(texts),
        texts[:3],
    )
