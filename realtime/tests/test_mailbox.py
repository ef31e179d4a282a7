"""realtime.mailbox.Mailbox: an asyncio.Queue's put_nowait/get, nothing allocated idle."""

import asyncio
import sys

import pytest

from realtime.mailbox import Mailbox

pytestmark = pytest.mark.asyncio


async def test_items_come_out_in_the_order_they_went_in():
    box = Mailbox()
    for n in range(3):
        box.put_nowait(n)
    assert [await box.get() for _ in range(3)] == [0, 1, 2]
    assert box.empty()


async def test_a_waiting_receiver_gets_the_next_item():
    box = Mailbox()
    receiving = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    assert box.waiting
    box.put_nowait("hello")
    assert await asyncio.wait_for(receiving, 1) == "hello"
    assert not box.waiting


async def test_one_item_wakes_one_of_two_receivers_in_arrival_order():
    box = Mailbox()
    first = asyncio.ensure_future(box.get())
    second = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    box.put_nowait(1)
    assert await asyncio.wait_for(first, 1) == 1
    assert not second.done()
    box.put_nowait(2)
    assert await asyncio.wait_for(second, 1) == 2


async def test_a_receiver_cancelled_after_its_wake_up_passes_the_item_on():
    box = Mailbox()
    first = asyncio.ensure_future(box.get())
    second = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    box.put_nowait("x")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "x"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_cancelled_receiver_leaves_nothing_behind():
    box = Mailbox()
    receiving = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    assert not box.waiting and box.empty()


async def test_over_capacity_put_raises_queue_full_and_zero_is_unbounded():
    box = Mailbox(capacity=2)
    box.put_nowait(1)
    box.put_nowait(2)
    with pytest.raises(asyncio.QueueFull):
        box.put_nowait(3)
    unbounded = Mailbox()
    for n in range(10_000):
        unbounded.put_nowait(n)
    assert unbounded.qsize() == 10_000


async def test_empty_reads_raise_queue_empty():
    box = Mailbox()
    with pytest.raises(asyncio.QueueEmpty):
        box.get_nowait()
    with pytest.raises(asyncio.QueueEmpty):
        box.peek()
    box.put_nowait("a")
    assert box.peek() == "a" and box.qsize() == 1


async def test_an_idle_mailbox_is_far_smaller_than_an_asyncio_queue():
    box, queue = Mailbox(), asyncio.Queue()
    box.put_nowait(1)
    box.get_nowait()  # used, then empty again: nothing kept
    assert sys.getsizeof(box) < 100
    assert box._items is None and box._waiters is None
    assert sys.getsizeof(queue._queue) > 500  # one of an asyncio.Queue's four deques
