"""Frame abuse (docs/protocol.md §1, §4.2): bad frames get errors, limits close."""

import json

import pytest

from realtime.frames import dumps
from realtime.messages import frame_text
from realtime.protocol import CloseCode
from realtime.tests.conftest import TIMEOUT, send, subscribe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def still_works(communicator) -> None:
    assert await send(communicator, {"type": "ping", "ref": "alive"}) == {
        "type": "pong",
        "ref": "alive",
    }


@pytest.mark.parametrize(
    "text, code",
    [
        ("not json", "bad_request"),
        ("{", "bad_request"),
        ("[1, 2]", "bad_request"),
        ('"ping"', "bad_request"),
        ("null", "bad_request"),
        ("{}", "bad_request"),
        ('{"type": 5}', "bad_request"),
        ('{"type": null}', "bad_request"),
        ('{"type": "subscribe"}', "bad_request"),
        ('{"type": "subscribe", "stream": 5}', "bad_request"),
        ('{"type": "subscribe", "stream": "room:lobby", "since": "1"}', "bad_request"),
        ('{"type": "subscribe", "stream": "room:lobby", "since": -1}', "bad_request"),
        ('{"type": "subscribe", "stream": "room:lobby", "since": 1.5}', "bad_request"),
        ('{"type": "subscribe", "stream": "room:lobby", "since": true}', "bad_request"),
        ('{"type": "unsubscribe", "stream": ["room:lobby"]}', "bad_request"),
        ('{"type": "publish", "stream": "room:lobby"}', "bad_request"),
        ('{"type": "publish", "data": 1}', "bad_request"),
        ('{"type": "publish", "stream": "room:lobby", "data": NaN}', "bad_request"),
        (
            '{"type": "publish", "stream": "room:lobby", "data": "\\u0000"}',
            "bad_request",
        ),
        (
            '{"type": "publish", "stream": "room:lobby", "data": "\\ud800"}',
            "bad_request",
        ),
        ('{"type": "auth", "token": 5}', "bad_request"),
        ('{"type": "auth"}', "bad_request"),
        ('{"type": "auth", "token": ["a.b.c"]}', "bad_request"),
        ('{"type": "unsubscribe"}', "bad_request"),
        (
            '{"type": "subscribe", "stream": "room:lobby", "presence": "yes"}',
            "bad_request",
        ),
        ('{"type": "subscribe", "stream": "room:lobby", "presence": 1}', "bad_request"),
        ('{"type": "publish", "stream": null, "data": 1}', "bad_request"),
        # Not strict JSON: never echoed back as NaN or Infinity.
        ('{"type": "ping", "ref": NaN}', "bad_request"),
        ('{"type": "ping", "ref": Infinity}', "bad_request"),
        ('{"type": "ping", "ref": -Infinity}', "bad_request"),
        ('{"type": "ping", "ref": 1e400}', "bad_request"),
        pytest.param(
            '{"type": "ping", "ref": 1' + "0" * 400 + "}",
            "bad_request",
            id="ref-integer-beyond-doubles",
        ),
        ('{"type": "publish", "stream": "room:lobby", "data": [1e400]}', "bad_request"),
        pytest.param(
            '{"type": "ping", "ref": ' + "[" * 64 + "]" * 64 + "}",
            "bad_request",
            id="frame-65-deep",
        ),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": ""}', "unknown_type"),
        pytest.param("[" * 5000 + "]" * 5000, "bad_request", id="deep-nesting"),
    ],
)
async def test_bad_frame_gets_an_error_and_the_socket_still_works(
    connect, alice, rooms, text, code
):
    communicator = await connect(alice)
    await communicator.send_to(text_data=text)
    answer = await communicator.receive_json_from(timeout=TIMEOUT)
    assert answer["type"] == "error" and answer["code"] == code, answer
    await still_works(communicator)


async def test_error_echoes_the_ref_of_the_bad_frame(connect, alice):
    communicator = await connect(alice)
    answer = await send(communicator, {"type": "nope", "ref": {"n": 1}})
    assert answer["code"] == "unknown_type" and answer["ref"] == {"n": 1}


@pytest.mark.parametrize(
    "text, ref",
    [
        ('{"ref": "R1"}', "R1"),
        ('{"type": 1, "ref": "R2"}', "R2"),
        ('{"type": null, "ref": 7}', 7),
    ],
)
async def test_an_object_without_a_valid_type_gets_bad_request_with_its_ref(
    connect, alice, text, ref
):
    communicator = await connect(alice)
    await communicator.send_to(text_data=text)
    answer = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (answer["type"], answer["code"]) == ("error", "bad_request"), answer
    assert answer["ref"] == ref, answer
    await still_works(communicator)


async def test_rate_limited_errors_echo_the_ref_of_the_refused_frame(
    connect, alice, settings
):
    settings.AUTHSOCKET_FRAME_RATE = "5/min"  # a burst of 10; nothing refills meanwhile
    communicator = await connect(alice)
    for ref in range(10):
        assert await send(communicator, {"type": "ping", "ref": ref}) == {
            "type": "pong",
            "ref": ref,
        }
    # Refused before parsing; answered like any frame: `ref` when it has one.
    refused = [
        (json.dumps({"type": "ping", "ref": "over"}), {"ref": "over"}),
        ('{"type": null, "ref": ["no type"]}', {"ref": ["no type"]}),
        ("not json", {}),  # nothing to echo
        ('{"type": "ping"}', {}),
    ]
    for text, echoed in refused:
        await communicator.send_to(text_data=text)
        answer = await communicator.receive_json_from(timeout=TIMEOUT)
        assert answer.pop("detail")
        assert answer == {"type": "error", "code": "rate_limited", **echoed}


async def test_oversize_message_closes_4413(connect, alice, settings):
    settings.AUTHSOCKET_MAX_MESSAGE_BYTES = 1000
    communicator = await connect(alice)
    await communicator.send_to(text_data=json.dumps({"type": "ping", "pad": "é" * 600}))
    assert await communicator.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": CloseCode.MESSAGE_TOO_BIG,
    }


async def test_message_at_the_limit_is_accepted(connect, alice, settings):
    settings.AUTHSOCKET_MAX_MESSAGE_BYTES = 1000
    communicator = await connect(alice)
    frame = json.dumps({"type": "ping", "pad": ""})
    frame = frame.replace('""', '"' + "x" * (1000 - len(frame)) + '"')
    assert len(frame.encode()) == 1000
    await communicator.send_to(text_data=frame)
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "pong"


async def test_binary_frame_closes_4415(connect, alice):
    communicator = await connect(alice)
    await communicator.send_to(bytes_data=b'{"type": "ping"}')
    assert await communicator.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": CloseCode.BINARY_FRAME,
    }


async def test_flood_is_rate_limited_then_closed_4429(connect, alice, settings):
    settings.AUTHSOCKET_FRAME_RATE = "5/s"
    communicator = await connect(alice)
    for _ in range(40):
        await communicator.send_json_to({"type": "ping"})
    outputs = []
    while True:
        output = await communicator.receive_output(timeout=TIMEOUT)
        outputs.append(output)
        if output["type"] == "websocket.close":
            break
    frames = [json.loads(o["text"]) for o in outputs if o["type"] == "websocket.send"]
    assert [f["type"] for f in frames[:10]] == ["pong"] * 10  # the burst of 2N
    assert {"type": "error", "code": "rate_limited"}.items() <= frames[10].items()
    assert outputs[-1] == {"type": "websocket.close", "code": CloseCode.RATE_LIMITED}


async def test_a_frame_exactly_64_deep_is_answered(connect, alice):
    communicator = await connect(alice)
    ref = json.loads("[" * 63 + "]" * 63)  # the frame around it is 64 deep
    assert await send(communicator, {"type": "ping", "ref": ref}) == {
        "type": "pong",
        "ref": ref,
    }


async def test_published_data_63_deep_is_stored_and_delivered(connect, alice, rooms):
    communicator = await connect(alice)
    await subscribe(communicator, "room:lobby")
    data = json.loads("[" * 63 + "]" * 63)
    frame = {"type": "publish", "stream": "room:lobby", "data": data}
    assert (await send(communicator, frame))["type"] == "published"
    message = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (message["type"], message["data"]) == ("message", data)


async def test_server_frames_refuse_non_finite_numbers():
    """The safety net behind the strict parser: never a NaN on the wire."""
    for serialize in (dumps, frame_text):
        for bad in (float("nan"), float("inf"), -float("inf")):
            with pytest.raises(ValueError):
                serialize({"type": "pong", "ref": bad})
