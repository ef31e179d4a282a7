"""The frame limiter (realtime/ratelimit.py) against the contract of §4.2–§4.3.

4429 means "the client went on sending after `rate_limited` errors": a
client that paces itself, or that waits after a refusal as the protocol
tells it to, is never closed; a flood is. The limiter reads its clock, so
these drive it with a clock of their own; the last test goes through a
socket with the real one.
"""

import asyncio
import json

import pytest

from realtime.protocol import CloseCode
from realtime.ratelimit import FrameLimiter
from realtime.tests.conftest import TIMEOUT
from realtime.tests.sockets import still_open


class Clock:
    """A monotonic clock that moves only when told; starts where a real one might."""

    def __init__(self, now: float = 8137.291):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def send(limiter: FrameLimiter, frames: int) -> tuple[int, int, bool]:
    """`frames` at one instant: (accepted, refused, closed by the last refusal)."""
    accepted = refused = 0
    for _ in range(frames):
        if limiter.take():
            accepted += 1
        else:
            refused += 1
            if limiter.flooding:
                return accepted, refused, True
    return accepted, refused, False


def test_a_burst_of_2n_then_n_refusals_stays_open_and_one_more_closes():
    limiter = FrameLimiter("5/s", clock=Clock())
    assert send(limiter, 15) == (10, 5, False)
    assert not limiter.take() and limiter.flooding


@pytest.mark.parametrize("rate", [8, 9, 10, 12, 20])
def test_a_client_that_waits_half_a_second_after_refusals_is_never_closed(rate):
    """The browser client's pacing (static/authsocket/client.js): 8 frames in
    flight, so 8 are refused before the first refusal comes back; then it waits
    0.5 s (its shortest backoff) and sends 8 again, and one more for each
    answered one. Strikes left by one window used to carry into the next: at
    8 to 12 frames a second the second window closed the socket."""
    clock = Clock()
    limiter = FrameLimiter(f"{rate}/s", clock=clock)
    window = 8
    accepted, refused, closed = send(limiter, 2 * rate + window)
    assert (accepted, refused, closed) == (2 * rate, window, False)
    for _ in range(50):
        clock.advance(0.5)
        accepted, refused, closed = send(limiter, window)
        assert not closed
        # Each answered frame freed a place in flight: sent before any refusal came back.
        more_accepted, more_refused, closed = send(limiter, accepted)
        assert not closed
        assert refused + more_refused == window - more_accepted


@pytest.mark.parametrize("rate", ["5/s", "7/s", "50/s", "30/min"])
def test_a_client_at_the_sustained_rate_after_its_burst_is_never_closed(rate):
    """Burst spent, N refusals outstanding (one short of the close): a client
    that then sends one frame every 1/N s, on the dot, is served every frame."""
    clock = Clock()
    limiter = FrameLimiter(rate, clock=clock)
    count, _, period = rate.partition("/")
    count, seconds = int(count), {"s": 1, "min": 60}[period]
    assert send(limiter, 3 * count) == (2 * count, count, False)
    for _ in range(20 * count):
        clock.advance(seconds / count)
        assert limiter.take()
        assert not limiter.flooding


def test_a_pause_forgives_strikes_before_any_frame_is_accepted():
    clock = Clock()
    limiter = FrameLimiter("10/s", clock=clock)
    assert send(limiter, 30) == (20, 10, False)
    # Half a second: five tokens back, and five strikes forgiven besides the
    # five the accepted frames take away: N refusals are tolerated again.
    clock.advance(0.5)
    assert send(limiter, 15) == (5, 10, False)
    assert not limiter.take() and limiter.flooding


@pytest.mark.parametrize("times", [3.5, 4, 10, 100])
def test_a_flood_over_three_times_the_rate_is_closed(times):
    clock = Clock()
    rate = 50
    limiter = FrameLimiter(f"{rate}/s", clock=clock)
    gap, elapsed = 1 / (times * rate), 0.0
    while limiter.take() or not limiter.flooding:
        assert elapsed < 60, "a flood was never closed"
        clock.advance(gap)
        elapsed += gap
    # The burst of 2N lasts 2N / (R - N) s; then strikes grow by R - 3N a
    # second (R - N refused, N accepted, N forgiven) until they pass N.
    assert elapsed == pytest.approx(2 / (times - 1) + 1 / (times - 3), rel=0.05)


def test_sending_at_twice_the_rate_gets_errors_not_a_close():
    clock = Clock()
    limiter = FrameLimiter("50/s", clock=clock)
    refused = 0
    for _ in range(100 * 60):  # a minute at 100 frames a second
        clock.advance(0.01)
        refused += not limiter.take()
        assert not limiter.flooding
    assert refused > 2000  # half of them, once the burst was spent


# --- through a socket ------------------------------------------------------------


async def answers(communicator, count: int) -> list[str]:
    """The next `count` frames' `type`/`code`; "closed" for a close."""
    got = []
    while len(got) < count:
        output = await communicator.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            return [*got, f"closed {output.get('code')}"]
        frame = json.loads(output["text"])
        got.append(frame.get("code", frame["type"]))
    return got


@pytest.mark.django_db(transaction=True)
async def test_a_socket_that_waits_after_refusals_stays_open(connect, alice, settings):
    settings.AUTHSOCKET_FRAME_RATE = "8/s"
    communicator = await connect(alice)
    for _ in range(24):  # the burst of 16 and a window of 8 refused
        await communicator.send_json_to({"type": "ping"})
    first = await answers(communicator, 24)
    assert first.count("pong") >= 16 and "rate_limited" in first, first
    # The client's backoff after `rate_limited`: the pause itself is under test.
    await asyncio.sleep(0.5)
    for _ in range(12):  # four or five fit in the refilled budget, the rest not
        await communicator.send_json_to({"type": "ping"})
    second = await answers(communicator, 12)
    assert f"closed {CloseCode.RATE_LIMITED}" not in second, second
    assert set(second) <= {"pong", "rate_limited"}, second
    await asyncio.sleep(0.5)
    assert await still_open(communicator)
