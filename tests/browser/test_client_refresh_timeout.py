"""client.js when the answer to a refresh comes after the client stopped waiting.

The server may have rotated the refresh token by then (docs/protocol.md §2):
the answer's Set-Cookie holds the only copy of the new one. The client gives
up after `requestTimeoutMs` without aborting the request, so the browser still
stores that cookie; an aborted request's late Set-Cookie would be dropped, and
the next refresh, with the old cookie, would be refused `token_rotated` (the
client signs out) or, past `AUTHSOCKET_REFRESH_GRACE`, `token_reused` (the
whole session revoked).

The answers are made late for real, against daphne: the server's SQLite
database locked for writing by the test (the server takes the refresh, waits
for the lock, its busy timeout being 20 s, and rotates once the test lets
go), or Chromium's network emulation (the server answers at once, and the
browser gets the answer, and stores its cookie, only `latency` ms after the
request went out).
"""

import contextlib
import sqlite3

import pytest

from tests.browser.conftest import WAIT
from tests.browser.isolated import ALICE_LIVE

pytestmark = pytest.mark.browser


def isolated_client(request_timeout_ms: int) -> str:
    """An isolated client of alice, live, as `window.__c`. Its timeout is
    shortened after the login (password hashing may be slow on a busy host)."""
    return (
        "const { AuthSocket } = await import('/static/authsocket/client.js');"
        "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
        "window.__c = c;"
        + ALICE_LIVE
        + f"c.options.requestTimeoutMs = {request_timeout_ms};"
    )


# A call's outcome as a string: its result, or `failed: <code>`.
OUTCOME = ".then((value) => value, (error) => 'failed: ' + (error.code ?? error))"


def database_path(server) -> str:
    return server.env["DATABASE_URL"].removeprefix("sqlite:///")


@contextlib.contextmanager
def writes_held(server):
    """The server's database locked for writing until the block ends: the
    server still reads (WAL), and its writes wait for the lock."""
    db = sqlite3.connect(database_path(server), isolation_level=None, timeout=WAIT)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield
    finally:
        db.close()  # rolls back: the lock is released


def session_state(server, sid: str) -> dict:
    """Whether the session was revoked, how many refresh tokens it was
    issued, and how many of them are still unused (one while it lives)."""
    with contextlib.closing(sqlite3.connect(database_path(server), timeout=WAIT)) as db:
        revoked_at, reason = db.execute(
            "SELECT revoked_at, revoke_reason FROM accounts_authsession WHERE sid = ?",
            (sid,),
        ).fetchone()
        issued, unused = db.execute(
            "SELECT count(*), count(*) - count(token.rotated_at)"
            " FROM accounts_refreshtoken AS token"
            " JOIN accounts_authsession AS session ON token.session_id = session.id"
            " WHERE session.sid = ?",
            (sid,),
        ).fetchone()
    return {
        "revoked": revoked_at is not None,
        "reason": reason,
        "issued": issued,
        "unused": unused,
    }


def emulate_latency(page, latency_ms: int) -> None:
    """Every answer reaches the page `latency_ms` after its request went out
    (the request itself goes at once); 0 turns the emulation off."""
    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": latency_ms,
            "downloadThroughput": -1,
            "uploadThroughput": -1,
        },
    )


def test_a_refresh_answered_after_its_timeout_still_sets_the_new_cookie(
    server, browsers
):
    """The refresh times out (`network`) while the server waits for its
    database; then the server rotates the token and answers. That late
    answer sets the new cookie (and its token is taken), so the next
    refreshes succeed, and nothing is revoked."""
    page = browsers.context("alice").open()
    page.js_async(isolated_client(1000), timeout=20)
    sid = page.js("return window.__c.sid")
    with writes_held(server):
        first = page.js_async("return await window.__c.refresh()" + OUTCOME + ";")
    assert first == "failed: network"
    # The lock is free: the server rotates now, and its answer comes late.
    # Nothing goes out before the rotation, or it could win it instead.
    page.wait_for(
        lambda _d: session_state(server, sid)["issued"] == 2,
        message="the server never rotated the refresh token",
    )
    result = page.js_async(
        "const c = window.__c;"
        # The late answer's token ('shared'), or a refresh with its cookie.
        "const next = await c.refresh()" + OUTCOME + ";"
        # A request with the cookie the late answer set, whichever came first.
        "const again = await c.refresh()" + OUTCOME + ";"
        "const me = await c.api('/api/me')" + OUTCOME + ";"
        "return { next, again, me: me.username ?? me, sid: c.sid, state: c.state,"
        "  rotated: c.stats.rotated };",
        timeout=20,
    )
    assert result["next"] in ("shared", "refreshed"), result
    assert result["again"] == "refreshed", result
    assert result["me"] == "alice", result
    assert result["sid"] == sid, result
    assert result["state"] in ("live", "renewing"), result
    assert result["rotated"] == 0, result
    state = session_state(server, sid)
    assert (state["revoked"], state["reason"], state["unused"]) == (False, "", 1), state


def test_a_refresh_sent_before_the_late_answer_lands_does_not_sign_out(
    server, browsers
):
    """Every answer takes 3 s to reach the page. The first refresh times out
    after 1 s, though the server rotated at once; its answer lands at 3 s.
    The second one goes out at 2 s (the client waits for the late answer one
    more `requestTimeoutMs`, then sends) with the old cookie, and is answered
    `token_rotated` (within the grace) at 5 s: the client takes the late
    answer's token instead of signing out, and the cookie that answer set
    refreshes afterwards."""
    page = browsers.context("alice").open()
    page.js_async(isolated_client(1000), timeout=20)
    sid = page.js("return window.__c.sid")
    emulate_latency(page, 3000)
    try:
        result = page.js_async(
            "const c = window.__c;"
            "const first = await c.refresh()" + OUTCOME + ";"
            # The network is slow, not dead: the next answers are waited for.
            "c.options.requestTimeoutMs = 10000;"
            "const second = await c.refresh()" + OUTCOME + ";"
            "return { first, second, rotated: c.stats.rotated,"
            "  refreshes: c.stats.refreshes };",
            timeout=30,
        )
    finally:
        emulate_latency(page, 0)
    assert result == {
        "first": "failed: network",
        "second": "shared",  # the late answer's token
        "rotated": 1,  # the second was answered token_rotated
        "refreshes": 2,
    }, result
    result = page.js_async(
        "const c = window.__c;"
        "const again = await c.refresh()" + OUTCOME + ";"
        "const me = await c.api('/api/me')" + OUTCOME + ";"
        "return { again, me: me.username ?? me, sid: c.sid, state: c.state };",
        timeout=20,
    )
    assert result["again"] == "refreshed", result
    assert result["me"] == "alice", result
    assert result["sid"] == sid, result
    assert result["state"] in ("live", "renewing"), result
    assert session_state(server, sid) == {
        "revoked": False,
        "reason": "",
        "issued": 3,
        "unused": 1,
    }
