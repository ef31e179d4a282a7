"""The token file shared by processes: one entry per server URL."""

import threading
import time

from authsocket_client import FileTokenStore, Tokens


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
