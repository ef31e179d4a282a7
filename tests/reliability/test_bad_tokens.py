"""The bad-token corpus (tests/data/bad_tokens.json) through every entry point.

Each of the ≥ 40 generated cases must be refused by the token decoder, by the
HTTP API (401 with the right code, never 500), by each WebSocket transport
(before accept) and by the `auth` frame on a live socket (error, socket stays
open); a valid credential still works afterwards. Each test runs the whole
corpus and reports every case that got through, not just the first.
"""

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from accounts.keys import keyring
from accounts.services import ticket_issue
from accounts.tokens import InvalidToken, decode_access
from realtime.protocol import ErrorCode, ServerFrame
from realtime.tests.sockets import db, refused, welcomed
from tests.data import make_bad_tokens
from tests.reliability.helpers import CORPUS, bad_token_cases, communicator, wire
from tests.tokens import TEST_KID, TEST_SECRET

CASES = bad_token_cases()


def utf8_safe(value) -> bool:
    return not isinstance(value, str) or value.encode(
        "utf-8", "replace"
    ) == value.encode("utf-8", "surrogatepass")


TRANSPORTS = ["query", "subprotocol", "header", "ticket"]


def test_corpus_is_current_large_and_signed_with_the_test_secret():
    assert CORPUS.read_text() == make_bad_tokens.render(), (
        "tests/data/bad_tokens.json is stale: run python -m tests.data.make_bad_tokens"
    )
    assert len(CASES) >= 40
    assert all(case["reason"] and case["name"] for case in CASES)
    # Otherwise "signed with our key" cases would test nothing.
    assert django_settings.AUTHSOCKET_JWT_SECRET == TEST_SECRET
    assert keyring().signing_kid == TEST_KID


def test_decoder_refuses_every_bad_token_with_its_code():
    wrong = []
    for case in CASES:
        try:
            decode_access(case["token"])
        except InvalidToken as exc:
            if exc.code != case["code"]:
                wrong.append((case["name"], exc.code))
        else:
            if case["code"] != "revoked":  # well formed; the session check refuses
                wrong.append((case["name"], "accepted"))
    assert wrong == []


@pytest.mark.django_db
def test_http_bearer_refuses_every_bad_token_then_serves_a_valid_one(
    alice, open_session
):
    api = APIClient()
    wrong = []
    for case in CASES:
        header = b"Bearer " + wire(case["token"])
        response = api.get("/api/me", HTTP_AUTHORIZATION=header.decode("latin-1"))
        body = response.json()
        if (
            response.status_code != 401
            or body.get("code") != case["code"]
            or not response.get("WWW-Authenticate", "").startswith("Bearer")
        ):
            wrong.append((case["name"], response.status_code, body))
    assert wrong == []
    tokens = open_session(alice)
    response = api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {tokens.access}")
    assert response.status_code == 200 and response.json()["id"] == alice.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_websocket_transport_refuses_every_bad_token_before_accept(
    transport, alice, open_session
):
    through = [
        case["name"]
        for case in CASES
        if not await refused(communicator(transport, case["token"]))
    ]
    assert through == []
    tokens = await db(open_session, alice)
    valid = tokens.access
    if transport == "ticket":
        valid, _ = await db(
            ticket_issue,
            session=tokens.session,
            access_expires_at=tokens.access_expires_at,
        )
    comm = communicator(transport, valid)
    assert (await welcomed(comm))["user"]["id"] == alice.pk
    await comm.disconnect()


NOT_STRINGS = [None, 0, 1.5, True, [], ["a.b.c"], {}, {"token": "a.b.c"}]


@pytest.mark.django_db(transaction=True)
async def test_auth_frame_refuses_every_bad_token_and_the_socket_stays_open(
    alice, open_session, settings
):
    settings.AUTHSOCKET_FRAME_RATE = "10000/s"  # the limiter is not under test here
    tokens = await db(open_session, alice)
    comm = communicator("query", tokens.access)
    welcome = await welcomed(comm)
    frames = [(case["name"], case["token"]) for case in CASES]
    frames += [(f"token {value!r}", value) for value in NOT_STRINGS]
    wrong = []
    for ref, (name, token) in enumerate(frames):
        await comm.send_json_to({"type": "auth", "token": token, "ref": ref})
        answer = await comm.receive_json_from(timeout=5)
        expected = {
            "type": ServerFrame.ERROR,
            "code": ErrorCode.INVALID_TOKEN,
            "detail": answer.get("detail"),
            "ref": ref,
        }
        if not isinstance(token, str):  # a wrong field type: a malformed frame
            expected = {**expected, "code": ErrorCode.BAD_REQUEST}
        if not utf8_safe(token):  # not valid Unicode: refused as a frame
            expected = {**expected, "code": ErrorCode.BAD_REQUEST}
            del expected["ref"]
        if answer != expected:
            wrong.append((name, answer))
    await comm.send_json_to({"type": "auth", "ref": "missing"})
    missing = await comm.receive_json_from(timeout=5)
    assert missing["code"] == ErrorCode.BAD_REQUEST
    assert wrong == []
    await comm.send_json_to({"type": "ping", "ref": "alive"})
    assert await comm.receive_json_from(timeout=5) == {"type": "pong", "ref": "alive"}
    # The old expiry stood throughout; a valid renewal is still honoured.
    renewed = await db(open_session, alice)  # same user, other session: refused
    await comm.send_json_to({"type": "auth", "token": renewed.access})
    assert (await comm.receive_json_from(timeout=5))["code"] == "invalid_token"
    from accounts.tokens import encode_access

    fresh, exp = encode_access(user_id=alice.pk, sid=welcome["session"], ttl=600)
    await comm.send_json_to({"type": "auth", "token": fresh, "ref": "ok"})
    assert await comm.receive_json_from(timeout=5) == {
        "type": ServerFrame.AUTH_OK,
        "expires_at": exp,
        "ref": "ok",
    }
    await comm.disconnect()
