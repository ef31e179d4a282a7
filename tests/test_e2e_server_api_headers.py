"""Repeated `Idempotency-Key` headers through a real daphne (docs/api.md).

daphne hands the application each header line as it came, and Django joins
repeated ones with "," (`a` and `b` read as the key `a,b`): the publish
refuses them 400 `invalid` and publishes nothing, where it used to store a
message under the joined key. One line holding a comma stays one key.
"""

import http.client
import json
import re

import pytest

from tests.servers import manage

pytestmark = [pytest.mark.e2e]

TIMEOUT = 10


@pytest.fixture
def api_key(daphne_server, e2e_env) -> str:
    output = manage(e2e_env, "service_key", "create", "headers-e2e")
    return re.search(r"\bask_\S+", output).group(0)


def publish(server, api_key: str, *header_lines: tuple[str, str]):
    """POST a publish with these header lines sent as they are: (status, body)."""
    body = json.dumps({"stream": "room:lobby", "data": {"n": 1}}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        connection.putrequest("POST", "/api/server/publish")
        connection.putheader("Authorization", f"ApiKey {api_key}")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        for name, value in header_lines:
            connection.putheader(name, value)  # repeated names stay two lines
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_two_idempotency_key_headers_are_400_through_daphne(daphne_server, api_key):
    status, answer = publish(
        daphne_server, api_key, ("Idempotency-Key", "a"), ("Idempotency-Key", "b")
    )
    assert (status, answer["code"]) == (400, "invalid"), answer
    assert "Idempotency-Key" in answer["errors"]
    # Nothing was stored under "a,b": that key publishes now, once.
    first = publish(daphne_server, api_key, ("Idempotency-Key", "a,b"))
    again = publish(daphne_server, api_key, ("Idempotency-Key", "a,b"))
    assert (first[0], again[0]) == (201, 200)
    assert again[1] == first[1]
