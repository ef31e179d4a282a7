"""The token file shared by processes: one entry per server URL."""

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
