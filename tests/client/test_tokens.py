"""The token file shared by processes: one entry per server URL."""

import json
import threading
import time

import pytest

from authsocket_client import (
    AuthSocketError,
    FileTokenStore,
    TokenFileUnreadable,
    Tokens,
)


def test_saves_for_two_servers_at_once_never_bring_back_an_older_entry(tmp_path):
    """Two processes (threads here) save tokens of two servers into one
    file, as two `listen` commands renewing their tokens do. A save reads
    the file and writes it back whole; unlocked, one writer puts back the
    other's entry as it was before, and its next refresh would send a
    refresh token already rotated: `token_reused`, the session revoked as
    stolen. Each writer must always read back what it saved last."""
    path = tmp_path / "tokens.json"
    reverted: dict[str, int] = {}

    def refresh_again_and_again(key: str) -> None:
        store = FileTokenStore(path, f"http://{key}.example")
        reverted[key] = 0
        for n in range(200):
            store.save(Tokens(f"{key}{n}", f"refresh-{key}{n}", time.time() + 300, 300))
            held = store.load()
            if held is None or held.refresh != f"refresh-{key}{n}":
                reverted[key] += 1

    writers = [
        threading.Thread(target=refresh_again_and_again, args=(key,)) for key in "ab"
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
        assert not writer.is_alive()
    assert reverted == {"a": 0, "b": 0}


@pytest.mark.parametrize(
    "body",
    [
        {"refresh": "r", "expires_in": 300},  # no access token
        {"access": "", "refresh": "r", "expires_in": 300},
        {"access": 7, "refresh": "r", "expires_in": 300},
        {"access": "a", "refresh": "r"},  # no lifetime: renewed in a tight loop
        {"access": "a", "refresh": "r", "expires_in": 0},
        {"access": "a", "refresh": "r", "expires_in": "300"},
        {"access": "a", "refresh": "r", "expires_in": True},
        {"access": "a", "refresh": "r", "expires_in": float("inf")},
        ["a", "r"],
        None,
    ],
)
def test_a_token_answer_the_client_cannot_use_is_a_transient_bad_response(body):
    with pytest.raises(AuthSocketError) as refused:
        Tokens.from_answer(body)
    assert (refused.value.code, refused.value.transient) == ("bad_response", True)


SECRET = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2VjcmV0"


@pytest.mark.parametrize(
    "access",
    [SECRET + "é", SECRET + "\r\nX-Evil: 1", SECRET + "\n", "Bearer " + SECRET],
    ids=["non-ASCII", "CRLF", "a newline at the end", "a space"],
)
def test_an_access_token_that_is_no_header_value_is_a_bad_response(access):
    """A token that is not in the JWT alphabet cannot go in a header: every
    call would fail with a raw UnicodeEncodeError or ValueError, quoting the
    token. It is a malformed answer like any other, and never quoted."""
    body = {"access": access, "refresh": "r", "expires_in": 300}
    with pytest.raises(AuthSocketError) as refused:
        Tokens.from_answer(body)
    assert (refused.value.code, refused.value.transient) == ("bad_response", True)
    assert SECRET not in str(refused.value) and SECRET not in repr(refused.value)


@pytest.mark.parametrize("lifetime", [10**400, -(10**400)], ids=["huge", "-huge"])
def test_an_expires_in_beyond_any_float_is_a_bad_response(lifetime):
    """JSON allows an integer of 400 digits; `float()` of it overflows. It is
    no lifetime the client can count with: `bad_response`, not OverflowError."""
    body = {"access": "a.b.c", "refresh": "r", "expires_in": lifetime}
    with pytest.raises(AuthSocketError) as refused:
        Tokens.from_answer(body)
    assert (refused.value.code, refused.value.transient) == ("bad_response", True)


def test_a_token_answer_keeps_what_it_says():
    tokens = Tokens.from_answer(
        {"access": "a", "refresh": "r", "expires_in": 300, "user": {"id": 1}}, now=1000
    )
    assert (tokens.access, tokens.refresh, tokens.expires_at, tokens.lifetime) == (
        "a",
        "r",
        1300.0,
        300.0,
    )


@pytest.mark.parametrize(
    "user", ["alice", ["alice"], {"username": "alice"}, {"id": "1"}, {"id": True}]
)
def test_a_user_that_is_no_user_is_left_out_of_a_token_answer(user):
    """`user` only names whom the tokens are for. One that is not a user
    object (with an integer `id`) was kept, and failed whoever showed it;
    it is left out, and the tokens kept: a refresh's answer cannot be thrown
    away for it, the refresh token sent is spent (`login` refuses it)."""
    body = {"access": "a", "refresh": "r", "expires_in": 300, "user": user}
    tokens = Tokens.from_answer(body)
    assert (tokens.access, tokens.refresh, tokens.user) == ("a", "r", None)


WRONG_TYPES = {
    "access a number": {"access": 12345},
    "refresh a number": {"refresh": 7},
    "expires_at a string": {"expires_at": "soon"},
    "expires_at NaN": {"expires_at": float("nan")},
    "expires_at beyond a float": {"expires_at": 10**400},
    "lifetime null": {"lifetime": None},
    "lifetime 0": {"lifetime": 0},
    "user a string": {"user": "alice"},
}


@pytest.mark.parametrize("wrong", WRONG_TYPES.values(), ids=list(WRONG_TYPES))
def test_a_token_file_entry_of_the_wrong_types_is_unreadable(tmp_path, wrong):
    """An entry with the right keys and a field of the wrong type (hand-edited,
    another program's) was used as it was, and failed deep inside a call
    (AttributeError, TypeError). It is an unreadable token file, naming the
    field, never its value, nor the secrets beside it."""
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path, "http://a.example")
    store.save(Tokens(SECRET, "refresh-secret", time.time() + 300, 300))
    entries = json.loads(path.read_text())
    entries["http://a.example"].update(wrong)
    path.write_text(json.dumps(entries))
    with pytest.raises(TokenFileUnreadable) as raised:
        store.load()
    (field,) = wrong
    assert f"`{field}`" in str(raised.value) and str(path) in str(raised.value)
    assert not raised.value.transient
    assert SECRET not in str(raised.value) and "refresh-secret" not in str(raised.value)


def test_an_unreadable_token_file_is_an_error_and_is_left_as_it_is(tmp_path):
    """Read as empty, a corrupt file would be replaced by the next save, and
    the sessions it holds for other servers lost with it."""
    path = tmp_path / "tokens.json"
    path.write_text("[]")
    store = FileTokenStore(path, "http://a.example")
    for call in (store.load, lambda: store.save(None)):
        with pytest.raises(TokenFileUnreadable) as raised:
            call()
        assert isinstance(raised.value, OSError) and not raised.value.transient
        assert str(path) in str(raised.value)
    assert path.read_text() == "[]"
    path.unlink()
    assert store.load() is None  # no file yet: nothing saved, no error
