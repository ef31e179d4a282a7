"""No token, ticket, refresh token or password ever reaches a log (docs/protocol.md §6).

A real daphne (default verbosity: its access log on stdout, our logging on
stderr, both captured to one file, at DEBUG level) serves every flow that
carries a secret — in bodies, headers, subprotocols and query strings,
accepted, refused and 4xx — then the captured output is searched for each.
"""

import asyncio
import json
import urllib.error
import urllib.request

import pytest
import websockets

from tests.http import call, login
from tests.servers import DaphneServer

pytestmark = [pytest.mark.e2e]

PASSWORD = "authsocket-demo"
WRONG_PASSWORD = "wrong-Secret-pw-4417"
NEW_PASSWORD = "brand-new-Passw0rd-7731"


def fragments(secret: str) -> list[str]:
    """The secret and distinctive pieces of it (a truncated log line leaks too)."""
    pieces = [secret]
    if len(secret) >= 40:
        pieces += [secret[:24], secret[-24:]]
    if secret.count(".") == 2:  # a JWT: each segment but the common header
        pieces += [part for part in secret.split(".")[1:] if len(part) >= 16]
    return pieces


async def ws_outcome(url: str, **kwargs) -> str:
    try:
        async with websockets.connect(url, open_timeout=10, **kwargs) as socket:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
            return frame["type"]
    except websockets.InvalidStatus as refused:
        return f"refused {refused.response.status_code}"


def status_of(url: str) -> int:
    """GET any page (JSON or HTML); its status, 4xx included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def cookie_of(headers) -> str:
    for header in headers.get_all("Set-Cookie") or ():
        name, _, rest = header.partition("=")
        if name == "authsocket_refresh":
            return rest.split(";", 1)[0]
    raise AssertionError("no refresh cookie")


async def test_no_secret_reaches_the_captured_output(e2e_env, tmp_path):
    server = DaphneServer(
        {**e2e_env, "LOG_LEVEL": "DEBUG"}, log_path=tmp_path / "out.log"
    )
    await asyncio.to_thread(server.start)
    secrets = [PASSWORD, WRONG_PASSWORD, NEW_PASSWORD]
    base, ws = server.http, server.ws
    try:
        first = login(base, "alice", PASSWORD)
        secrets += [first["access"], first["refresh"]]
        status, _, _ = call(
            "POST",
            f"{base}/api/auth/login",
            {"username": "bob", "password": WRONG_PASSWORD},
        )
        assert status == 401
        status, second, _ = call(
            "POST", f"{base}/api/auth/refresh", {"refresh": first["refresh"]}
        )
        assert status == 200
        secrets += [second["access"], second["refresh"]]
        status, _, _ = call(
            "POST", f"{base}/api/auth/refresh", {"refresh": first["refresh"]}
        )
        assert status == 401  # token_rotated
        access = second["access"]

        cookie_mode = {"X-AuthSocket-Cookie": "1"}
        status, carol, headers = call(
            "POST",
            f"{base}/api/auth/login",
            {"username": "carol", "password": PASSWORD},
            headers=cookie_mode,
        )
        assert status == 200
        cookie = cookie_of(headers)
        secrets += [carol["access"], cookie]
        status, _, headers = call(
            "POST",
            f"{base}/api/auth/refresh",
            headers={**cookie_mode, "Cookie": f"authsocket_refresh={cookie}"},
        )
        assert status == 200
        secrets.append(cookie_of(headers))

        tickets = []
        for _ in range(2):
            status, body, _ = call("POST", f"{base}/api/auth/ticket", token=access)
            assert status == 200
            tickets.append(body["ticket"])
        secrets += tickets

        outcomes = [
            await ws_outcome(f"{ws}?ticket={tickets[0]}"),
            await ws_outcome(f"{ws}?ticket={tickets[0]}"),  # used: refused
            await ws_outcome(f"{ws}?token={access}"),
            await ws_outcome(f"{ws}?token={access}&token={access}"),
            await ws_outcome(
                ws, subprotocols=["authsocket.v1", f"authsocket.token.{access}"]
            ),
            await ws_outcome(ws, subprotocols=[f"authsocket.token.{access}"]),
            await ws_outcome(
                ws, additional_headers={"Authorization": f"Bearer {access}"}
            ),
            await ws_outcome(
                ws, additional_headers={"Authorization": f"Token {access}"}
            ),
            await ws_outcome(f"{ws}?token={access}", origin="http://evil.example"),
        ]
        assert outcomes == [
            "welcome",
            "refused 403",
            "welcome",
            "refused 403",
            "welcome",
            "refused 403",
            "welcome",
            "refused 403",
            "refused 403",
        ]

        # Plain HTTP GETs carrying secrets in the URL: 4xx answers, logged lines.
        for url in (
            f"{base}/ws/?token={access}",  # a proxy dropped the Upgrade header
            f"{base}/api/me?token={access}&ticket={tickets[1]}",
            f"{base}/api/nope?refresh={second['refresh']}&password={PASSWORD}",
            f"{base}/admin/login/?next=/&access_token={access}",
        ):
            assert 200 <= status_of(url) < 500
        # Opaque secrets where no name says what they are: a path, a Host.
        for url in (
            f"{base}/api/auth/sessions/{second['refresh']}",
            f"{base}/ws/{tickets[1]}",
        ):
            assert 400 <= status_of(url) < 500
        status, _, _ = call(
            "GET", f"{base}/api/me", headers={"Host": f"{first['refresh']}.example"}
        )
        assert status == 400
        for bad in ("Bearer not-a-jwt", f"Bearer {access}x"):
            request = urllib.request.Request(
                f"{base}/api/me", headers={"Authorization": bad}
            )
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=10)

        status, _, _ = call(
            "POST",
            f"{base}/api/auth/password",
            {"old_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD},
            token=access,
        )
        assert status == 400
        status, _, _ = call(
            "POST",
            f"{base}/api/auth/password",
            {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            token=access,
        )
        assert status == 204
        status, _, _ = call("POST", f"{base}/api/auth/logout", token=access)
        assert status == 204
        assert await ws_outcome(f"{ws}?token={access}") == "refused 403"  # revoked
    finally:
        server.stop()

    output = server.logs()
    # The run was logged (so the search below means something).
    assert "WSCONNECT /ws/" in output
    assert "websocket refused: " in output
    assert "/api/auth/login" in output
    leaks = [
        (secret[:12] + "…", piece[:12] + "…")
        for secret in secrets
        for piece in fragments(secret)
        if piece in output
    ]
    assert not leaks, f"secrets found in the logs: {leaks}"
    assert '"GET /ws/" 404' in output  # the plain GET was logged, path only
