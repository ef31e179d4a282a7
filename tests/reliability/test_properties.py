"""Property-based tests (hypothesis): no input makes the parsers misbehave.

- The frame dispatcher answers ANY text with exactly one well-formed frame
  (or a close), never raises, and never sends text that UTF-8 cannot carry.
- The token decoder returns a claim set only when every rule of docs/protocol.md §3
  holds (integer times included); for anything else it raises `InvalidToken`
  (never another error).
- Frames that are not strict JSON, or whose fields have the wrong type, are
  answered `bad_request` (tests/reliability/strict_oracle.py states the rules).
- Generated publish / subscribe (any `since`) / unsubscribe / prune sequences,
  with fan-out delivered late and reordered: per stream, ids strictly increase
  and skip nothing stored, nothing live follows `replay.truncated` until the
  next subscribe, and after the last one everything committed later arrives.

Example counts are bounded so the file runs in a few seconds.
"""

import asyncio
import contextlib
import json
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.tokens import AccessClaims, InvalidToken, decode_access
from realtime.consumers import StreamConsumer
from realtime.protocol import ClientFrame, CloseCode, ErrorCode, ServerFrame
from realtime.ratelimit import FrameLimiter
from tests.reliability.strict_oracle import NOT_STRICT, strict_parse, wrong_field
from tests.tokens import TEST_KID, TEST_SECRET, access_claims, hs256, segment

BOUNDED = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- the frame dispatcher -----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
frame_types = st.sampled_from([*ClientFrame, "", "PING", "welcome", "error"]) | st.text(
    max_size=12
)
frames = st.fixed_dictionaries(
    {"type": frame_types},
    optional={
        "ref": json_values,
        "token": json_values | st.text(alphabet="abc.-_", max_size=40),
        "stream": json_values
        | st.sampled_from(["user", "room:lobby", "room:team", "room:nope", "room:"]),
        "data": json_values,
        "since": json_values | st.integers(0, 3),
        "presence": json_values | st.booleans(),
    },
)
frame_texts = (
    st.text()
    | json_values.map(json.dumps)
    | frames.map(json.dumps)
    | frames.map(lambda f: json.dumps(f, ensure_ascii=False))
)


class Stub:
    def schedule(self, expires_at):
        pass

    def cancel(self):
        pass


class StubLayer:
    """Group changes succeed; nothing is delivered back to this consumer."""

    async def group_add(self, group, channel):
        pass

    async def group_discard(self, group, channel):
        pass


def make_consumer(sent: list, user) -> StreamConsumer:
    """A consumer past its handshake, whose outgoing messages land in `sent`."""
    consumer = StreamConsumer()
    consumer.scope = {"type": "websocket", "path": "/ws/"}
    consumer.user, consumer.user_id, consumer.sid = user, user.pk, "prop-session"
    consumer.registered, consumer.groups_joined = False, []
    consumer.channel_layer, consumer.channel_name = StubLayer(), "prop.channel"
    consumer.limiter = FrameLimiter("1000000/s")
    consumer.expiry = Stub()

    async def base_send(message):
        sent.append(message)

    consumer.base_send = base_send
    return consumer


@contextlib.asynccontextmanager
async def in_registry(consumer: StreamConsumer):
    """The socket as welcomed sockets are: recorded in this loop's registry."""
    from realtime.presence import registry_get, registry_reset

    await registry_reset()  # each example runs its own event loop
    await registry_get().socket_open(
        consumer.channel_name,
        user_id=consumer.user_id,
        username=consumer.user.get_username(),
        sid=consumer.sid,
    )
    try:
        yield
    finally:
        await registry_reset()


async def received(consumer: StreamConsumer, text: str) -> None:
    async with in_registry(consumer):
        await consumer.receive(text_data=text)


def utf8_safe(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_answer(text: str, sent: list) -> None:
    """One answer (or a close); only replayed messages may follow it."""
    assert sent, "a frame went unanswered"
    frames = []
    for message in sent:
        if message["type"] == "websocket.close":
            assert message.get("code") in set(CloseCode) and len(sent) == 1
            return
        assert message["type"] == "websocket.send"
        message["text"].encode("utf-8")  # daphne encodes every text frame
        answer = strict_parse(message["text"])
        assert answer is not NOT_STRICT, message["text"]  # no NaN ever goes out
        frames.append(answer)
    frame = frames[0]
    assert frame["type"] in set(ServerFrame)
    if frame["type"] == ServerFrame.ERROR:
        assert frame["code"] in set(ErrorCode)
    assert all(
        f["type"] in (ServerFrame.MESSAGE, ServerFrame.REPLAY_TRUNCATED)
        for f in frames[1:]
    ), frames
    request = strict_parse(text)
    if request is NOT_STRICT:  # not JSON, too deep, NaN, 1e400, …
        assert frame["code"] == ErrorCode.BAD_REQUEST and "ref" not in frame
        return
    if not isinstance(request, dict) or not isinstance(request.get("type"), str):
        assert frame["code"] == ErrorCode.BAD_REQUEST
        return
    if not utf8_safe(request):
        assert frame["code"] == ErrorCode.BAD_REQUEST and "ref" not in frame
        return
    if wrong_field(request):
        assert frame["code"] == ErrorCode.BAD_REQUEST, (request, frame)
    if "ref" in request:
        assert frame["ref"] == request["ref"]


@pytest.mark.django_db(transaction=True)  # handlers query from their own threads
@settings(BOUNDED, max_examples=200)
@given(text=frame_texts)
@example(text='{"type":"ping","ref":"\\ud800"}')
@example(text='{"type":"nope\\udfff"}')
@example(text="[" * 10_000)
@example(text='{"type":"auth","token":"' + "a" * 5000 + '"}')
def test_dispatcher_answers_any_text_with_one_valid_frame(world, text):
    sent = []
    consumer = make_consumer(sent, world["alice"])
    asyncio.run(received(consumer, text))
    check_answer(text, sent)


# --- the token decoder --------------------------------------------------------

LEEWAY = 10
HEADER = segment({"alg": "HS256", "kid": TEST_KID})


def now() -> int:
    return int(time.time())


def times():
    """Seconds around now, far past/future, the same as floats, text or
    booleans (never valid: times are integers), and non-numbers."""
    near = st.integers(-1000, 1000).map(lambda d: now() + d)
    return (
        near
        | near.map(float)
        | near.map(lambda t: t + 0.5)
        | near.map(str)
        | st.booleans()
        | st.sampled_from([0, -1, 10**12, 10**30])
        | json_values
    )


claim_values = {
    "iss": st.sampled_from(["authsocket", "evil", ""]) | json_values,
    "aud": st.sampled_from(["authsocket-ws", ["authsocket-ws"], "x"]) | json_values,
    "sub": st.sampled_from(["1", "42", "-1", "1.0", "", "a", "١"]) | json_values,
    "sid": st.text(max_size=70) | json_values,
    "iat": times(),
    "exp": times(),
    "nbf": times(),
    "jti": st.text(max_size=8) | json_values,
    "typ": st.sampled_from(["access", "refresh", "ACCESS"]) | json_values,
}


@st.composite
def token_parts(draw):
    base = {
        "iss": "authsocket",
        "aud": "authsocket-ws",
        "sub": "1",
        "sid": "prop-session",
        "iat": now(),
        "exp": now() + 300,
        "jti": "j",
        "typ": "access",
    }
    payload = {}
    for name, values in claim_values.items():
        choice = draw(st.sampled_from(["keep", "keep", "drop", "replace"]))
        if choice == "keep" and name in base:
            payload[name] = base[name]
        elif choice == "replace":
            payload[name] = draw(values)
    header = {
        "alg": draw(st.sampled_from(["HS256", "HS256", "HS512", "none", "RS256"])),
        "kid": draw(st.sampled_from([TEST_KID, TEST_KID, "other", None, 7])),
    }
    ours = draw(st.booleans()) or draw(st.booleans())
    return header, payload, ours


def number(value) -> bool:
    """Token times are integers (never a float, a string or a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool)


def acceptable(header: dict, payload: dict, ours: bool) -> list[str]:
    """What is wrong with a token that was accepted (empty: nothing)."""
    t = time.time()
    problems = []
    if header["alg"] != "HS256" or header["kid"] != TEST_KID or not ours:
        problems.append("signature/alg/kid")
    if payload.get("iss") != "authsocket" or payload.get("aud") != "authsocket-ws":
        problems.append("iss/aud")
    if payload.get("typ") != "access":
        problems.append("typ")
    sub, sid, jti = payload.get("sub"), payload.get("sid"), payload.get("jti")
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit()):
        problems.append("sub")
    if not (isinstance(sid, str) and 0 < len(sid) <= 64) or not isinstance(jti, str):
        problems.append("sid/jti")
    exp, iat = payload.get("exp"), payload.get("iat")
    if not (number(exp) and exp + LEEWAY > t - 1):
        problems.append("exp")
    if not (number(iat) and iat - LEEWAY <= t + 1):
        problems.append("iat")
    if "nbf" in payload and not (
        number(payload["nbf"]) and payload["nbf"] - LEEWAY <= t + 1
    ):
        problems.append("nbf")
    return problems


@BOUNDED
@given(parts=token_parts())
def test_decoder_returns_only_fully_valid_claims_or_raises_invalid_token(parts):
    header, payload, ours = parts
    key = TEST_SECRET.encode() if ours else b"not-our-secret-0123456789-0123456789"
    token = hs256(segment(header), segment(payload), key)
    try:
        claims = decode_access(token)
    except InvalidToken:
        return
    assert acceptable(header, payload, ours) == []
    assert isinstance(claims, AccessClaims)
    assert claims.user_id == int(payload["sub"]) and claims.sid == payload["sid"]
    assert isinstance(claims.exp, int) and isinstance(claims.iat, int)


@BOUNDED
@given(token=st.text() | st.binary().map(lambda b: b.decode("latin-1")) | json_values)
def test_decoder_raises_only_invalid_token_on_junk(token):
    with pytest.raises(InvalidToken):
        decode_access(token)


def valid_claims() -> dict:
    """Claims a token of user 5 passes with, issued now for five minutes."""
    return access_claims(
        sub="5", sid="prop-session", iat=now(), exp=now() + 300, jti="j"
    )


@settings(BOUNDED, max_examples=100)
@given(extra=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_a_valid_token_with_extra_claims_is_accepted(extra):
    """Non-vacuity: the oracle above is exercised by tokens that do pass."""
    payload = {**extra, **valid_claims()}
    payload.pop("nbf", None)
    claims = decode_access(hs256(HEADER, segment(payload), TEST_SECRET.encode()))
    assert claims.user_id == 5


@settings(BOUNDED, max_examples=100)
@given(
    name=st.sampled_from(["exp", "iat", "nbf"]),
    shift=st.integers(-5, 5),
    spelling=st.sampled_from([float, str, lambda t: t + 0.25, lambda t: True]),
)
def test_a_time_that_is_not_an_integer_is_invalid_token(name, shift, spelling):
    """A time otherwise fine (within leeway) is refused for its type alone."""
    payload = valid_claims()
    payload[name] = spelling(payload.get(name, now()) + shift)
    token = hs256(HEADER, segment(payload), TEST_SECRET.encode())
    with pytest.raises(InvalidToken) as info:
        decode_access(token)
    assert info.value.code == "invalid_token"


# --- stream names and permissions ----------------------------------------------

ROOMS = {"lobby": True, "team": False, "secret": False, "open": True}  # slug → public
MEMBERS = {"lobby": {"alice", "bob", "carol"}, "team": {"alice", "bob"}}
MEMBERS["secret"] = {"alice"}


@pytest.fixture
def world(make_user):
    from realtime.demo import demo_rooms_create
    from realtime.models import Room

    users = {
        name: make_user(name, f"pw-{name}-123") for name in ("alice", "bob", "carol")
    }
    demo_rooms_create(users=users)
    Room.objects.create(slug="open", title="Open", public=True)  # nobody in it
    users["dave"] = make_user("dave", "pw-dave-123")  # in no room at all
    return users


def expected(user, name: str, action) -> bool:
    """The rules of docs/protocol.md §4.2 written out independently of realtime/."""
    from realtime.permissions import Action

    if name in ("user", f"user:{user.pk}"):
        return action is Action.READ
    for slug, public in ROOMS.items():
        if name == f"room:{slug}":
            if action is Action.JOIN:  # only public rooms are joined (§2)
                return public
            if user.username in MEMBERS.get(slug, ()):
                return True
            return public and action is Action.READ
    return False


def mutations(name: str):
    """Near misses of a real stream name."""
    return st.sampled_from(
        [
            name.upper(),
            name.title(),
            f" {name}",
            f"{name} ",
            f"{name}\n",
            f"{name}\x00",
            name + ":",
            name + ":1",
            name.replace(":", "::"),
            name.replace(":", ": "),
            name.replace(":", "："),  # fullwidth colon
            name.replace("o", "о"),  # Cyrillic o
            name + "/..",
            "../" + name,
            name * 2,
        ]
    )


real_names = (
    st.sampled_from(["user", *(f"room:{slug}" for slug in ROOMS), "room:nope", "room:"])
    | st.integers(-3, 12).map(lambda n: f"user:{n}")
    | st.integers(1, 9).map(lambda n: f"user:0{n}")
)
stream_names = (
    real_names
    | real_names.flatmap(mutations)
    | st.text(max_size=20)
    | st.text(alphabet="roomuser:lobbyteamsecret0123456789-_", max_size=16)
)


@pytest.mark.django_db
@BOUNDED
@given(name=stream_names, who=st.sampled_from(["alice", "bob", "carol", "dave"]))
def test_stream_names_never_authorize_beyond_the_rules(world, name, who):
    from realtime.permissions import Action, stream_access
    from realtime.streams import stream_parse

    user = world[who]
    stream = stream_parse(name, user_id=user.pk)
    for action in Action:
        decision = stream_access(user=user, stream=stream, action=action)
        assert decision.allowed == expected(user, name, action), (name, who, action)


# --- replay and live interleavings ------------------------------------------------

INTERLEAVED_STREAMS = ["room:lobby", "room:team"]
streams_drawn = st.sampled_from(INTERLEAVED_STREAMS)
publish_op = st.tuples(st.just("publish"), streams_drawn)
# Which pending fan-out arrives next: counted from the newest (gaps) or anywhere.
deliver_op = st.tuples(st.just("deliver"), st.integers(0, 2) | st.integers(0, 63))
# `since`: absent, absolute (often past the end: few messages are stored), or
# relative to the stream's last id (behind it: replays and truncations).
since_drawn = st.none() | st.integers(0, 9) | st.integers(-6, 2).map(lambda d: ("+", d))
subscribe_op = st.tuples(st.just("subscribe"), streams_drawn, since_drawn)
interleaving_ops = st.lists(
    st.one_of(
        publish_op,
        publish_op,
        publish_op,
        deliver_op,
        deliver_op,
        subscribe_op,
        subscribe_op,
        st.tuples(st.just("unsubscribe"), streams_drawn),
        st.tuples(st.just("prune"), streams_drawn, st.integers(1, 3)),
    ),
    min_size=8,
    max_size=40,
)


class Reader:
    """A strict client's view of one stream; it checks every frame it gets.

    No frame is dropped as a duplicate: the server itself must send ids that
    strictly increase, skip no stored message, and stay silent after
    `replay.truncated` until the next `subscribe`.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.subscribed, self.paused = False, False
        self.pos: int | None = None  # the last id this subscription has
        self.received: list[int] = []
        # The highest id sent while the subscription is held: an unsubscribe
        # ends it, and a new subscription replays what its `since` asks.
        self.held_max = 0

    def on_subscribed(self, since, answer: list[dict], last_id: int, kept) -> None:
        subscribed, *rest = answer
        assert subscribed["type"] == ServerFrame.SUBSCRIBED, answer
        assert subscribed["last_id"] == last_id, answer
        start = last_id if since is None else since
        if self.subscribed:  # already held: no id it was sent comes again
            start = max(start, self.held_max)
        reset = start > last_id or (start < last_id and start + 1 not in kept)
        assert subscribed.get("reset", False) is reset, (answer, start, kept)
        assert "reset" not in subscribed or subscribed["reset"] is True
        start = min(start, last_id)
        wanted = sorted(i for i in kept if start < i <= last_id)
        replayed = [f for f in rest if f["type"] == ServerFrame.MESSAGE]
        assert all(f.get("replay") is True for f in replayed), answer
        got = [f["id"] for f in replayed]
        assert got == wanted[: len(got)] and len(got) <= self.limit, (answer, wanted)
        tail = rest[len(replayed) :]
        self.subscribed, self.pos = True, start
        self.received += got
        if got:
            self.pos = got[-1]
            self.held_max = max(self.held_max, got[-1])
        if len(got) < len(wanted):
            assert len(got) == self.limit, answer
            assert tail == [truncated(subscribed["stream"], self.pos)], answer
            self.paused = True
        else:
            assert tail == [], answer
            self.pos, self.paused = last_id, False

    def on_live(self, message_id: int, sent: list[dict], kept) -> None:
        if not self.subscribed or self.paused or message_id <= self.pos:
            assert sent == [], (message_id, sent)
            return
        messages = [f for f in sent if f["type"] == ServerFrame.MESSAGE]
        assert all("replay" not in f for f in messages), sent
        for frame in messages:
            skipped = [i for i in kept if self.pos < i < frame["id"]]
            assert not skipped, (self.pos, frame["id"], skipped)
            self.pos = frame["id"]
            self.received.append(frame["id"])
            self.held_max = max(self.held_max, frame["id"])
        if messages and messages[-1]["id"] == message_id:
            assert len(messages) == len(sent), sent
            assert len(messages) - 1 <= self.limit, sent  # one bounded gap read
        else:  # a reordered gap larger than one read: paged like a replay
            assert len(messages) == self.limit, sent
            assert sent[len(messages) :] == [truncated(sent[0]["stream"], self.pos)]
            self.paused = True

    def on_unsubscribed(self) -> None:
        self.subscribed, self.paused, self.pos = False, False, None
        self.held_max = 0


def truncated(stream: str, next_since: int) -> dict:
    return {"type": "replay.truncated", "stream": stream, "next_since": next_since}


class Interleaving:
    """One socket (the real consumer) and a channel layer the test delivers by
    hand, so fan-out can be late, reordered, or arrive for pruned messages."""

    def __init__(self, user, rooms, limit: int) -> None:
        self.sent: list = []
        self.consumer = make_consumer(self.sent, user)
        self.user, self.rooms = user, rooms
        self.readers = {name: Reader(limit) for name in INTERLEAVED_STREAMS}
        self.kept = {name: set() for name in INTERLEAVED_STREAMS}
        self.last = dict.fromkeys(INTERLEAVED_STREAMS, 0)
        self.pending: list[dict] = []

    def take(self) -> list[dict]:
        frames = [json.loads(m["text"]) for m in self.sent]
        assert all(m["type"] == "websocket.send" for m in self.sent), self.sent
        self.sent.clear()
        return frames

    async def publish(self, name: str) -> None:
        from channels.db import database_sync_to_async

        from realtime.tests.messages import room_message_store

        published = await database_sync_to_async(room_message_store)(
            room=self.rooms[name], sender=self.user, data=name
        )
        self.kept[name].add(published.message.seq)
        self.last[name] = published.message.seq
        self.pending.append(published.event)

    async def deliver(self, index: int) -> None:
        event = self.pending.pop(-1 - index % len(self.pending))
        await self.consumer.stream_message(event)
        name = event["stream"]
        self.readers[name].on_live(event["id"], self.take(), self.kept[name])

    async def subscribe(self, name: str, since) -> None:
        if isinstance(since, tuple):  # relative to the stream's last id
            since = max(0, self.last[name] + since[1])
        frame = {"type": "subscribe", "stream": name}
        if since is not None:
            frame["since"] = since
        await self.consumer.receive(text_data=json.dumps(frame))
        reader = self.readers[name]
        reader.on_subscribed(since, self.take(), self.last[name], self.kept[name])

    async def unsubscribe(self, name: str) -> None:
        await self.consumer.receive(
            text_data=json.dumps({"type": "unsubscribe", "stream": name})
        )
        assert self.take() == [{"type": "unsubscribed", "stream": name}]
        self.readers[name].on_unsubscribed()

    async def prune(self, name: str, count: int) -> None:
        """History retention: the oldest kept messages of the stream go."""
        from channels.db import database_sync_to_async

        from realtime.models import Message

        oldest = sorted(self.kept[name])[:count]
        await database_sync_to_async(
            lambda: Message.objects.filter(
                stream=f"room:{self.rooms[name].slug}", seq__in=oldest
            ).delete()
        )()
        self.kept[name] -= set(oldest)

    async def catch_up(self, name: str) -> int:
        """Subscribe as a client resumes (paging through truncations); the mark."""
        reader = self.readers[name]
        await self.subscribe(name, reader.pos if reader.subscribed else None)
        while reader.paused:
            await self.subscribe(name, reader.pos)
        return reader.pos


@pytest.fixture
def interleaving_rooms(world):
    from realtime.models import Room

    return {
        name: Room.objects.get(slug=name.split(":")[1])
        for name in ("room:lobby", "room:team")
    }


@pytest.mark.django_db(transaction=True)  # handlers query from their own threads
@settings(BOUNDED, max_examples=100)
@given(
    ops=interleaving_ops,
    limit=st.integers(1, 3),
    late=st.integers(0, 5),
    data=st.data(),
)
def test_replay_and_live_interleavings_keep_ids_strict_and_complete(
    world, interleaving_rooms, ops, limit, late, data
):
    from django.test import override_settings

    from realtime.models import Message, StreamCounter

    Message.objects.all().delete()  # each example starts from empty streams
    StreamCounter.objects.all().delete()
    run = Interleaving(world["alice"], interleaving_rooms, limit)

    async def scenario() -> None:
        async with in_registry(run.consumer):
            await steps()

    async def steps() -> None:
        for op, *args in ops:
            if op == "deliver" and not run.pending:
                continue
            await getattr(run, op)(*args)
        # The client resumes every stream; what is committed later all arrives.
        marks = {name: await run.catch_up(name) for name in INTERLEAVED_STREAMS}
        for name in INTERLEAVED_STREAMS:
            for _ in range(late):
                await run.publish(name)
        for _ in range(1000):
            paused = [n for n, r in run.readers.items() if r.paused]
            if run.pending:  # a paused stream gets its fan-out too: and ignores it
                await run.deliver(data.draw(st.integers(0, 63), label="late order"))
            elif paused:
                await run.subscribe(paused[0], run.readers[paused[0]].pos)
            else:
                break
        for name, reader in run.readers.items():
            assert reader.pos == run.last[name], (name, reader.pos, run.last)
            after = [i for i in reader.received if i > marks[name]]
            assert after == list(range(marks[name] + 1, run.last[name] + 1))

    with override_settings(AUTHSOCKET_REPLAY_LIMIT=limit):
        asyncio.run(scenario())
