"""Repeated `Idempotency-Key` headers on `POST /api/server/publish` (§7).

Django hands the view repeated headers joined with "," (ASGIRequest, and any
WSGI server), and a comma is one of the printable characters a key may
hold: `a` and `b` in two headers read exactly like the one key `a,b`. Two
headers say two different things about one publish, so they are refused
400 `invalid`, like a malformed key, and nothing is published; one header
whose key holds commas is a key like any other. These requests come
through Django's ASGI test client with the header lines as a server sends
them: one entry each (the WSGI test client cannot repeat a header).
"""

import json

import pytest
from django.test import AsyncClient
from django.test.client import FakePayload

from accounts.service_keys import service_key_create
from realtime.models import IdempotentPublish, Message
from realtime.tests.sockets import db

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

PUBLISH = "/api/server/publish"


@pytest.fixture
def key():
    return service_key_create(name="backend")[1]


async def publish(raw_key: str, *header_lines: tuple[str, str]):
    """POST a publish to room:lobby with these extra header lines, in order."""
    body = json.dumps({"stream": "room:lobby", "data": {"n": 1}}).encode()
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"ApiKey {raw_key}".encode()),
        *((name.encode(), value.encode()) for name, value in header_lines),
    ]
    return await AsyncClient().request(
        method="POST",
        path=PUBLISH,
        query_string="",
        headers=headers,
        _body_file=FakePayload(body),
    )


async def stored() -> tuple[int, list[str]]:
    messages = await db(Message.objects.count)
    keys = await db(
        lambda: list(IdempotentPublish.objects.values_list("key", flat=True))
    )
    return messages, keys


@pytest.mark.parametrize(
    "values",
    [("a", "b"), ("same", "same"), ("a", "b", "c")],
    ids=["two", "identical", "three"],
)
async def test_repeated_idempotency_key_headers_are_400_invalid(key, rooms, values):
    response = await publish(key, *(("Idempotency-Key", value) for value in values))
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == "invalid"
    assert "Idempotency-Key" in answer["errors"], answer
    assert await stored() == (0, [])


async def test_the_header_is_repeated_whatever_its_spelling(key, rooms):
    response = await publish(key, ("Idempotency-Key", "a"), ("idempotency-KEY", "b"))
    assert response.status_code == 400, response.content
    assert await stored() == (0, [])


async def test_one_key_holding_commas_is_a_key(key, rooms):
    first = await publish(key, ("Idempotency-Key", "a,b"))
    again = await publish(key, ("Idempotency-Key", "a, b,"))
    repeat = await publish(key, ("Idempotency-Key", "a,b"))
    assert (first.status_code, again.status_code, repeat.status_code) == (
        201,
        201,
        200,
    )
    assert repeat.json() == first.json()
    messages, keys = await stored()
    assert (messages, sorted(keys)) == (2, ["a, b,", "a,b"])


async def test_a_single_header_is_taken_beside_other_repeated_headers(key, rooms):
    response = await publish(
        key, ("X-Trace", "1"), ("Idempotency-Key", "k"), ("X-Trace", "2")
    )
    assert response.status_code == 201, response.content
    assert await stored() == (1, ["k"])
