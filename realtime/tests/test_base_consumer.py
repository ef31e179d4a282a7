"""Declaring an AuthenticatedConsumer: mistakes fail at class creation, not on a socket.

Its behaviour on a live socket: tests/test_custom_consumer.py (a project's
path) and the /ws/ tests of this package (StreamConsumer is built on it).
"""

import pytest

from realtime.base_consumer import AuthenticatedConsumer, FrameSpec
from realtime.consumers import StreamConsumer
from realtime.protocol import ClientFrame


@pytest.mark.parametrize("method", ["connect", "receive", "disconnect", "dispatch"])
def test_overriding_what_the_guarantees_rest_on_is_refused(method):
    async def override(self, *args, **kwargs):
        pass

    with pytest.raises(TypeError, match=f"overrides {method}"):
        type("Bad", (AuthenticatedConsumer,), {method: override})


def test_redeclaring_a_built_in_frame_type_is_refused():
    async def on_ping(self, frame):
        pass

    with pytest.raises(TypeError, match="'ping' is already handled"):
        type(
            "Bad",
            (AuthenticatedConsumer,),
            {"frames": {"ping": FrameSpec("my_ping")}, "my_ping": on_ping},
        )


def test_a_frame_type_without_its_method_is_refused():
    with pytest.raises(TypeError, match=r"async def on_draw\(self, frame\)"):
        type(
            "Bad", (AuthenticatedConsumer,), {"frames": {"draw": FrameSpec("on_draw")}}
        )


def test_frame_types_are_inherited_and_merged():
    assert set(StreamConsumer.frame_table) == set(ClientFrame)
    assert set(AuthenticatedConsumer.frame_table) == {
        ClientFrame.PING,
        ClientFrame.AUTH,
    }
