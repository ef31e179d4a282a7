"""Presence scripts pipelined on a connection of their own
(realtime/presence/batching.py), against a real Redis: every caller gets its
own answer, whatever else was in flight with it."""

import asyncio
import uuid

import pytest
from redis.exceptions import TimeoutError as RedisTimeout

from realtime.presence.batching import ScriptPipeline
from realtime.presence.redis_store import TIMEOUT, close_bounded, redis_client
from realtime.presence.registry import OUTAGE_ERRORS
from tests.servers import free_port
from tests.services import require_redis

WAIT = 5.0  # seconds: every answer comes within it, or the pipeline hangs

# Appends ARGV[1] to KEYS[1] and answers it with the list's length; "bad" is
# refused by Redis, as a script's error.
ECHO = """
if ARGV[1] == 'bad' then return redis.error_reply('refused ' .. ARGV[1]) end
return {ARGV[1], redis.call('RPUSH', KEYS[1], ARGV[1])}
"""


class CountingWrites:
    """Counts the writes of a pipeline's connection (a spy on its stream)."""

    def __init__(self, writer):
        self.writer, self.writes = writer, 0

    def write(self, data):
        self.writes += 1
        return self.writer.write(data)

    def __getattr__(self, name):
        return getattr(self.writer, name)


@pytest.fixture
async def redis():
    client = redis_client(require_redis())
    yield client
    await close_bounded(client)


@pytest.fixture
async def pipeline(redis):
    pipeline = ScriptPipeline(redis, timeout=TIMEOUT)
    yield pipeline
    await pipeline.close()


@pytest.fixture
async def key(redis):
    name = f"authsocket-test-batch-{uuid.uuid4().hex[:10]}"
    yield name
    await redis.delete(name)


async def calls(pipeline, script, key, values):
    async with asyncio.timeout(WAIT):
        return await asyncio.gather(
            *(pipeline.run(script, [key], [value]) for value in values),
            return_exceptions=True,
        )


async def counted(pipeline, script, key) -> CountingWrites:
    """The pipeline's connection, opened by a first call, its writes counted."""
    await calls(pipeline, script, key, ["open"])
    connection = pipeline._link.connection
    connection._writer = CountingWrites(connection._writer)
    return connection._writer


async def test_each_caller_gets_its_own_answer_and_one_turn_is_one_write(
    redis, pipeline, key
):
    script = redis.register_script(ECHO)
    writes = await counted(pipeline, script, key)
    values = [f"v{i}" for i in range(50)]
    answers = await calls(pipeline, script, key, values)

    assert [value for value, _ in answers] == values
    # Each call went through exactly once, in the order made: lengths 2..51.
    assert [length for _, length in answers] == list(range(2, 52))
    # All fifty were made in the same turn of the loop: one write.
    assert writes.writes == 1


# Keeps Redis busy for ARGV[1] ms: a call that stays unanswered that long.
SLOW = """
local t = redis.call('TIME')
local stop = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 + tonumber(ARGV[1])
repeat t = redis.call('TIME') until tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 >= stop
return 'slow'
"""


async def test_calls_do_not_wait_for_earlier_replies_to_be_written(
    redis, pipeline, key
):
    await redis.script_load(SLOW)  # else its first call is written twice
    writes = await counted(pipeline, redis.register_script(ECHO), key)
    slow = asyncio.ensure_future(
        pipeline.run(redis.register_script(SLOW), [key], [300])
    )
    await asyncio.sleep(0.02)  # well inside the 300 ms Redis is kept busy
    later = asyncio.ensure_future(
        calls(pipeline, redis.register_script(ECHO), key, "abc")
    )
    await asyncio.sleep(0.02)

    # Written already, while the slow call is unanswered; answered after it.
    assert writes.writes == 2 and not slow.done() and not later.done()
    async with asyncio.timeout(WAIT):
        assert (await slow) == "slow"
        assert [value for value, _ in await later] == list("abc")


async def test_a_redis_that_stops_answering_fails_the_waiting_calls(redis, key):
    pipeline = ScriptPipeline(redis, timeout=0.1)
    slow = redis.register_script(SLOW)
    await redis.script_load(SLOW)
    async with asyncio.timeout(WAIT):
        with pytest.raises(RedisTimeout):  # what the registry takes for an outage
            await pipeline.run(slow, [key], [1000])
        # Redis answers again: the next call opens a new connection.
        assert await pipeline.run(redis.register_script(ECHO), [key], ["x"]) == [
            "x",
            1,
        ]
    await pipeline.close()


async def test_a_call_made_alone_goes_out_at_once(redis, pipeline, key):
    script = redis.register_script(ECHO)
    for n in range(1, 4):
        async with asyncio.timeout(WAIT):
            assert await pipeline.run(script, [key], ["x"]) == ["x", n]


async def test_an_error_reaches_only_the_call_that_caused_it(redis, pipeline, key):
    answers = await calls(
        pipeline, redis.register_script(ECHO), key, ["a", "b", "bad", "c"]
    )

    assert answers[0] == ["a", 1]
    assert [value for value, _ in answers[1:2] + answers[3:]] == ["b", "c"]
    assert "refused bad" in str(answers[2])


async def test_scripts_redis_forgot_are_loaded_again(redis, pipeline, key):
    script = redis.register_script(ECHO)
    await calls(pipeline, script, key, ["warm"])
    await redis.script_flush()  # as a Redis restart does

    answers = await calls(pipeline, script, key, ["a", "b", "c"])

    assert [value for value, _ in answers] == ["a", "b", "c"]


class CountingLoads:
    """The Redis client, counting its SCRIPT LOADs."""

    def __init__(self, client):
        self.client, self.loads = client, 0

    async def script_load(self, source):
        self.loads += 1
        return await self.client.script_load(source)

    def __getattr__(self, name):
        return getattr(self.client, name)


async def test_a_script_every_call_of_a_write_found_missing_is_loaded_once(redis, key):
    counting = CountingLoads(redis)
    pipeline = ScriptPipeline(counting, timeout=TIMEOUT)
    script = redis.register_script(ECHO)
    await calls(pipeline, script, key, ["warm"])
    await redis.script_flush()  # as a Redis restart does

    answers = await calls(pipeline, script, key, [f"v{i}" for i in range(20)])
    await pipeline.close()

    assert [value for value, _ in answers] == [f"v{i}" for i in range(20)]
    assert counting.loads == 1


async def test_a_call_that_cannot_be_encoded_fails_alone(redis, pipeline, key):
    script = redis.register_script(ECHO)
    await calls(pipeline, script, key, ["open"])

    answers = await calls(pipeline, script, key, ["a", "half \udc80", "c", "d"])

    assert isinstance(answers[1], UnicodeEncodeError)
    # The others get their own replies: none shifted onto its neighbour.
    assert [answers[i][0] for i in (0, 2, 3)] == ["a", "c", "d"]


async def test_a_caller_that_stops_waiting_leaves_the_others_answered(
    redis, pipeline, key
):
    script = redis.register_script(ECHO)
    first = asyncio.ensure_future(pipeline.run(script, [key], ["first"]))
    gathered = [asyncio.ensure_future(pipeline.run(script, [key], [v])) for v in "abc"]
    await asyncio.sleep(0)  # all four made, none answered yet
    gathered[1].cancel()

    async with asyncio.timeout(WAIT):
        assert (await first)[0] == "first"
        assert (await gathered[0])[0] == "a"
        assert (await gathered[2])[0] == "c"
    assert gathered[1].cancelled()


async def test_an_unreachable_redis_fails_every_caller_fast():
    dead_end = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    pipeline = ScriptPipeline(dead_end, timeout=TIMEOUT)
    answers = await calls(
        pipeline, dead_end.register_script(ECHO), "k", ["a", "b", "c"]
    )
    await close_bounded(dead_end)

    # What the registry takes for an outage, for every caller.
    assert all(isinstance(answer, OUTAGE_ERRORS) for answer in answers), answers


def test_a_call_left_behind_by_a_loop_that_stopped_does_not_block_the_next():
    client = redis_client(require_redis())
    pipeline = ScriptPipeline(client, timeout=TIMEOUT)
    script = client.register_script(ECHO)
    key = f"authsocket-test-batch-{uuid.uuid4().hex[:10]}"

    async def leave_a_call_behind():
        asyncio.ensure_future(pipeline.run(script, [key], ["lost"]))

    async def call_and_clean_up():
        async with asyncio.timeout(WAIT):
            answer = await pipeline.run(script, [key], ["next"])
        await client.delete(key)
        await close_bounded(client)
        return answer

    asyncio.run(leave_a_call_behind())  # its connection was never opened
    assert asyncio.run(call_and_clean_up()) == ["next", 1]


async def test_a_connection_redis_closed_is_replaced_without_failing_the_call(key):
    name = f"authsocket-test-batch-{uuid.uuid4().hex[:10]}"
    client = redis_client(require_redis(), client_name=name)
    pipeline = ScriptPipeline(client, timeout=TIMEOUT)
    script = client.register_script(ECHO)
    try:
        async with asyncio.timeout(WAIT):
            assert await pipeline.run(script, [key], ["before"]) == ["before", 1]
            for entry in await client.client_list():  # as a Redis restart does
                if entry["name"] == name:
                    await client.client_kill_filter(_id=entry["id"])

            assert await pipeline.run(script, [key], ["after"]) == ["after", 2]
    finally:
        await client.delete(key)
        await close_bounded(client)


async def test_a_call_whose_connection_is_lost_in_flight_is_sent_once_more(
    redis, pipeline, key
):
    script = redis.register_script(ECHO)
    await calls(pipeline, script, key, ["open"])
    lost = pipeline._link
    call = asyncio.ensure_future(pipeline.run(script, [key], ["again"]))
    await asyncio.sleep(0)  # the call is made; its write is the next callback
    # Right after the write, before any reply: the connection drops.
    asyncio.get_running_loop().call_soon(lost.connection._writer.transport.abort)

    async with asyncio.timeout(WAIT):
        value, _ = await call  # answered on a new connection

    assert value == "again"
    assert pipeline._link is not lost and not lost.open
