"""Presence scripts sent in pipelines (realtime/presence/batching.py), against a
real Redis: every caller gets its own answer, whatever else shared its pipeline."""

import asyncio
import uuid

import pytest

from realtime.presence.batching import ScriptBatcher
from realtime.presence.redis_store import close_bounded, redis_client
from realtime.presence.registry import OUTAGE_ERRORS
from tests.servers import free_port
from tests.services import require_redis

WAIT = 5.0  # seconds: every answer comes within it, or the batcher hangs

# Appends ARGV[1] to KEYS[1] and answers it with the list's length; "bad" is
# refused by Redis, as a script's error.
ECHO = """
if ARGV[1] == 'bad' then return redis.error_reply('refused ' .. ARGV[1]) end
return {ARGV[1], redis.call('RPUSH', KEYS[1], ARGV[1])}
"""


class CountingClient:
    """The Redis client, counting the pipelines made from it."""

    def __init__(self, client):
        self.client, self.pipelines = client, 0

    def pipeline(self, **options):
        self.pipelines += 1
        return self.client.pipeline(**options)

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture
async def redis():
    client = redis_client(require_redis())
    yield client
    await close_bounded(client)


@pytest.fixture
def batcher(redis):
    return ScriptBatcher(redis)


@pytest.fixture
async def key(redis):
    name = f"authsocket-test-batch-{uuid.uuid4().hex[:10]}"
    yield name
    await redis.delete(name)


async def calls(batcher, script, key, values):
    async with asyncio.timeout(WAIT):
        return await asyncio.gather(
            *(batcher.run(script, [key], [value]) for value in values),
            return_exceptions=True,
        )


async def test_each_caller_gets_its_own_answer_and_the_calls_share_pipelines(
    redis, key
):
    await redis.script_load(ECHO)  # else the scripts' first use costs a load
    counting = CountingClient(redis)
    batcher = ScriptBatcher(counting)
    values = [f"v{i}" for i in range(50)]
    answers = await calls(batcher, redis.register_script(ECHO), key, values)

    assert [value for value, _ in answers] == values
    # Each call went through exactly once: the lengths are 1..50, once each.
    assert sorted(length for _, length in answers) == list(range(1, 51))
    # All fifty were made in the same turn of the loop: one pipeline.
    assert counting.pipelines == 1


# Keeps Redis busy for ARGV[1] ms: a pipeline that stays in flight that long.
SLOW = """
local t = redis.call('TIME')
local stop = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 + tonumber(ARGV[1])
repeat t = redis.call('TIME') until tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 >= stop
return 'slow'
"""


async def test_calls_made_while_a_pipeline_is_in_flight_go_in_the_next(redis, key):
    await redis.script_load(ECHO)
    await redis.script_load(SLOW)
    counting = CountingClient(redis)
    batcher = ScriptBatcher(counting)
    slow = asyncio.ensure_future(batcher.run(redis.register_script(SLOW), [key], [100]))
    await asyncio.sleep(0.02)  # well inside the 100 ms it is kept in flight
    answers = await calls(batcher, redis.register_script(ECHO), key, "abcdefghij")

    assert (await slow) == "slow"
    assert [value for value, _ in answers] == list("abcdefghij")
    assert counting.pipelines == 2


async def test_a_call_made_alone_goes_out_at_once(redis, batcher, key):
    script = redis.register_script(ECHO)
    for n in range(1, 4):
        async with asyncio.timeout(WAIT):
            assert await batcher.run(script, [key], ["x"]) == ["x", n]


async def test_an_error_reaches_only_the_call_that_caused_it(redis, batcher, key):
    answers = await calls(
        batcher, redis.register_script(ECHO), key, ["a", "b", "bad", "c"]
    )

    assert answers[0] == ["a", 1]
    assert [value for value, _ in answers[1:2] + answers[3:]] == ["b", "c"]
    assert "refused bad" in str(answers[2])


async def test_scripts_redis_forgot_are_loaded_again(redis, batcher, key):
    script = redis.register_script(ECHO)
    await calls(batcher, script, key, ["warm"])
    await redis.script_flush()  # as a Redis restart does

    answers = await calls(batcher, script, key, ["a", "b", "c"])

    assert [value for value, _ in answers] == ["a", "b", "c"]


async def test_a_caller_that_stops_waiting_leaves_the_others_answered(
    redis, batcher, key
):
    script = redis.register_script(ECHO)
    first = asyncio.ensure_future(batcher.run(script, [key], ["first"]))
    gathered = [asyncio.ensure_future(batcher.run(script, [key], [v])) for v in "abc"]
    await asyncio.sleep(0)  # the first call is in flight, the others gathered
    gathered[1].cancel()

    async with asyncio.timeout(WAIT):
        assert (await first)[0] == "first"
        assert (await gathered[0])[0] == "a"
        assert (await gathered[2])[0] == "c"
    assert gathered[1].cancelled()


async def test_an_unreachable_redis_fails_every_caller_fast():
    dead_end = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    batcher = ScriptBatcher(dead_end)
    answers = await calls(batcher, dead_end.register_script(ECHO), "k", ["a", "b", "c"])
    await close_bounded(dead_end)

    # What the registry takes for an outage, for every caller.
    assert all(isinstance(answer, OUTAGE_ERRORS) for answer in answers), answers


def test_a_call_left_behind_by_a_loop_that_stopped_does_not_block_the_next():
    client = redis_client(require_redis())
    batcher = ScriptBatcher(client)
    script = client.register_script(ECHO)
    key = f"authsocket-test-batch-{uuid.uuid4().hex[:10]}"

    async def leave_a_call_behind():
        asyncio.ensure_future(batcher.run(script, [key], ["lost"]))

    async def call_and_clean_up():
        async with asyncio.timeout(WAIT):
            answer = await batcher.run(script, [key], ["next"])
        await client.delete(key)
        await close_bounded(client)
        return answer

    asyncio.run(leave_a_call_behind())  # its sender task never got to run
    assert asyncio.run(call_and_clean_up()) == ["next", 1]


async def test_a_connection_redis_closed_is_replaced_without_failing_the_call(key):
    name = f"authsocket-test-batch-{uuid.uuid4().hex[:10]}"
    client = redis_client(require_redis(), client_name=name)
    batcher = ScriptBatcher(client)
    script = client.register_script(ECHO)
    try:
        async with asyncio.timeout(WAIT):
            assert await batcher.run(script, [key], ["before"]) == ["before", 1]
            for entry in await client.client_list():  # as a Redis restart does
                if entry["name"] == name:
                    await client.client_kill_filter(_id=entry["id"])

            assert await batcher.run(script, [key], ["after"]) == ["after", 2]
    finally:
        await client.delete(key)
        await close_bounded(client)
