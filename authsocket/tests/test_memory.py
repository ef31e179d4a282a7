"""authsocket.memory: closed sockets' memory given back after a wave of closes."""

import asyncio
import gc
import weakref

import pytest

from authsocket import memory
from authsocket.memory import Reclaimer, heap_trim


class Cycle:
    """An object in a reference cycle: only the garbage collector frees it."""

    def __init__(self):
        self.me = self


@pytest.fixture
def reclaims(monkeypatch):
    """The reclaims that ran (the real ones run too)."""
    ran = []
    real = Reclaimer.reclaim

    def recording(self):
        ran.append(self.closed)
        real(self)

    monkeypatch.setattr(Reclaimer, "reclaim", recording)
    return ran


def test_heap_trim_answers_whether_glibc_gave_pages_back():
    assert heap_trim() in (True, False)  # never raises, glibc or not


def test_a_reclaim_frees_cyclic_garbage():
    gc.disable()
    try:
        garbage = Cycle()
        alive = weakref.ref(garbage)
        del garbage
        assert alive() is not None  # a cycle: reference counting cannot free it
        Reclaimer().reclaim()
        assert alive() is None
    finally:
        gc.enable()


@pytest.mark.asyncio
async def test_enough_closes_reclaim_once_off_the_closing_path(settings, reclaims):
    settings.AUTHSOCKET_RECLAIM_AFTER_CLOSES = 3
    reclaimer = Reclaimer()
    for _ in range(3):
        reclaimer.socket_closed(still_open=0)
    assert reclaims == []  # scheduled, not run inside the close
    await asyncio.sleep(0)
    assert reclaims == [3]
    assert reclaimer.closed == 0


@pytest.mark.asyncio
async def test_with_many_sockets_still_open_it_waits_for_as_many_closes(
    settings, reclaims
):
    settings.AUTHSOCKET_RECLAIM_AFTER_CLOSES = 2
    reclaimer = Reclaimer()
    for _ in range(4):
        reclaimer.socket_closed(still_open=5)
    await asyncio.sleep(0)
    assert reclaims == []
    reclaimer.socket_closed(still_open=5)
    await asyncio.sleep(0)
    assert reclaims == [5]


@pytest.mark.asyncio
async def test_zero_turns_it_off(settings, reclaims):
    settings.AUTHSOCKET_RECLAIM_AFTER_CLOSES = 0
    reclaimer = Reclaimer()
    for _ in range(10):
        reclaimer.socket_closed(still_open=0)
    await asyncio.sleep(0)
    assert reclaims == [] and reclaimer.closed == 0


def test_the_process_has_one_reclaimer():
    assert isinstance(memory.reclaimer, Reclaimer)
