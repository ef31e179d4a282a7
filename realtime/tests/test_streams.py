"""Stream names parse strictly; anything unexpected parses to None."""

import pytest

from realtime.streams import room_stream, stream_parse, user_stream

OWN = 7


@pytest.mark.parametrize(
    "name, expected",
    [
        ("user", user_stream(OWN)),
        ("user:7", user_stream(7)),
        ("user:12", user_stream(12)),
        ("room:lobby", room_stream("lobby")),
        ("room:a", room_stream("a")),
        ("room:team-2_x", room_stream("team-2_x")),
        ("room:" + "a" * 64, room_stream("a" * 64)),
    ],
)
def test_valid_names(name, expected):
    assert stream_parse(name, user_id=OWN) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "room:",
        "room:../x",
        "room:a/b",
        "room:Lobby",
        "room:-lobby",
        "room:lobby\n",
        " room:lobby",
        "room:" + "a" * 65,
        "room:lob by",
        "room:ℓobby",
        "user:",
        "user:abc",
        "user:0",
        "user:07",
        "user:-1",
        "user:1e3",
        "user:" + "1" * 20,
        "USER",
        "users",
        "user:7:x",
        "x" * 300,
        None,
        7,
        ["room:lobby"],
    ],
)
def test_malformed_names_parse_to_none(name):
    assert stream_parse(name, user_id=OWN) is None


def test_aliases_share_one_label_and_group():
    own, alias = stream_parse("user", user_id=OWN), stream_parse("user:7", user_id=OWN)
    assert own.label == alias.label == "user"
    assert own.name == alias.name == "user:7"
    assert own.group == alias.group == "user.7"
    assert stream_parse("room:team", user_id=OWN).group == "room.team"
