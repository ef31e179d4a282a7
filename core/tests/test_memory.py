"""core.memory: closed sockets' memory given back after a wave of closes."""

import asyncio
import gc
import weakref

import pytest

from core import memory
from core.memory import Reclaimer, heap_trim


class Cycle:
    """An object in a reference cycle: only the garbage collector frees it."""

    def __init__(self):
        self.me = self


@pytest.fixture
def reclaims(monkeypatch):
    """How many sockets had closed at each reclaim that ran (the real one runs too)."""
    ran = []
    real = Reclaimer.reclaim

    def recording(self, fallen=0):
        ran.append(fallen)
        real(self, fallen)

    monkeypatch.setattr(Reclaimer, "reclaim", recording)
    return ran


async def close_down(reclaimer: Reclaimer, open_now: int, until: int) -> None:
    """Close sockets one by one from `open_now` open to `until` open."""
    for still_open in range(open_now - 1, until - 1, -1):
        reclaimer.socket_closed(still_open=still_open)
        await asyncio.sleep(0)  # a close is one handler; the loop turns between


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
async def test_a_wave_of_closes_reclaims_at_each_halving(settings, reclaims):
    settings.AUTHSOCKET_RECLAIM_AFTER_DROP = 100
    reclaimer = Reclaimer()
    await close_down(reclaimer, 1000, 0)
    # 1000 → 500 → 250 → 125 → 25: then fewer than 100 remain to fall.
    assert reclaims == [500, 250, 125, 100]


@pytest.mark.asyncio
async def test_steady_churn_never_reclaims(settings, reclaims):
    settings.AUTHSOCKET_RECLAIM_AFTER_DROP = 10
    reclaimer = Reclaimer()
    for _ in range(1000):  # one closes, another opens: 100 open throughout
        reclaimer.socket_closed(still_open=99)
        await asyncio.sleep(0)
    assert reclaims == []


@pytest.mark.asyncio
async def test_a_small_process_needs_the_minimum_drop(settings, reclaims):
    settings.AUTHSOCKET_RECLAIM_AFTER_DROP = 100
    reclaimer = Reclaimer()
    await close_down(reclaimer, 60, 0)  # halved, but only 60 fell
    assert reclaims == []


@pytest.mark.asyncio
async def test_the_reclaim_runs_after_the_closing_handler(settings, reclaims):
    settings.AUTHSOCKET_RECLAIM_AFTER_DROP = 1
    reclaimer = Reclaimer()
    reclaimer.socket_closed(still_open=1)  # the peak is 2: one fell, half of it
    assert reclaims == []
    await asyncio.sleep(0)
    assert reclaims == [1]


@pytest.mark.asyncio
async def test_zero_turns_it_off(settings, reclaims):
    settings.AUTHSOCKET_RECLAIM_AFTER_DROP = 0
    await close_down(Reclaimer(), 10_000, 0)
    assert reclaims == []


def test_the_process_has_one_reclaimer():
    assert isinstance(memory.reclaimer, Reclaimer)
