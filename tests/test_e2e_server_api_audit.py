"""Failed service keys through a real daphne: refused alike, and never logged.

A revoked key, an unknown one of the right shape, one split by a space, one
in the query string, a key sent as a Bearer token on the user API, and the
attempts past the throttle: every answer is the documented one, and no line
the server writes (access log, warnings, at DEBUG) holds any of the keys.
"""

import re

import pytest

from tests.http import call
from tests.servers import DaphneServer, manage

pytestmark = [pytest.mark.e2e]

PUBLISH = "/api/server/publish"
BODY = {"stream": "room:lobby", "data": 1}


def created_key(env: dict[str, str], name: str) -> str:
    return re.search(r"\bask_\S+", manage(env, "service_key", "create", name)).group(0)


@pytest.fixture
def server(e2e_env, tmp_path):
    env = {
        **e2e_env,
        "LOG_LEVEL": "DEBUG",
        "AUTHSOCKET_SERVICE_KEY_THROTTLE": "5/min",
    }
    revoked = created_key(env, "gone")
    manage(env, "service_key", "revoke", "gone")
    live = created_key(env, "live")
    daphne = DaphneServer(env, log_path=tmp_path / "daphne.log").start()
    yield daphne, revoked, live
    daphne.stop()


def api_key(server, key: str):
    headers = {"Authorization": f"ApiKey {key}"}
    return call("POST", f"{server.http}{PUBLISH}", BODY, headers=headers)


def test_failed_keys_are_answered_alike_and_never_logged(server):
    daphne, revoked, live = server
    unknown = "ask_" + "Z" * 43
    answers = [
        api_key(daphne, revoked),
        api_key(daphne, unknown),
        api_key(daphne, f"{live[:20]} {live[20:]}"),
        api_key(daphne, live + "x"),
        api_key(daphne, live[:-1]),
    ]  # the throttle's five
    for status, body, headers in answers:
        assert (status, body["code"]) == (401, "invalid_key"), body
        assert headers["WWW-Authenticate"] == "ApiKey"
    status, body, headers = api_key(daphne, revoked)
    assert (status, body["code"]) == (429, "throttled"), body
    assert int(headers["Retry-After"]) > 0
    status, _, _ = api_key(daphne, live)  # a valid key is never throttled
    assert status == 201
    status, _, _ = call("POST", f"{daphne.http}{PUBLISH}?key={live}", BODY)
    assert status == 401
    status, body, _ = call("GET", f"{daphne.http}/api/me", token=live)
    assert (status, body["code"]) == (401, "invalid_token"), body
    logs = daphne.logs()
    assert "/api/server/publish" in logs  # the attempts were logged…
    for key in (revoked, unknown, live):
        secret = key.removeprefix("ask_")
        assert secret[:20] not in logs and secret[-20:] not in logs  # …not the keys
