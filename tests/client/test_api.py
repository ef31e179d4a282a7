"""The client's user side of the HTTP API against real daphne."""

import asyncio
import stat

import pytest

from authsocket_client import (
    ApiClient,
    CredentialsRejected,
    FileTokenStore,
    TokenRotated,
)
from tests.client.conftest import PASSWORD

pytestmark = [pytest.mark.e2e]


async def test_login_me_ticket_and_refresh_rotation(server):
    async with ApiClient(server.http) as api:
        tokens = await api.login("alice", PASSWORD)
        assert tokens.user["username"] == "alice"
        assert (await api.me())["username"] == "alice"
        assert isinstance(await api.ticket(), str)
        fresh = await api.refresh()
        assert fresh.refresh != tokens.refresh and fresh.access != tokens.access
        assert api.tokens == fresh and fresh.user == tokens.user
        assert (await api.me())["username"] == "alice"


async def test_refresh_race_lost_with_token_rotated_takes_the_winners_tokens(
    server, tmp_path
):
    """Two processes sharing one token file refresh at once: one rotates, the
    other is answered `token_rotated` and takes the newest pair from the file."""
    path = tmp_path / "tokens.json"
    first = ApiClient(server.http, store=FileTokenStore(path, server.http))
    second = ApiClient(server.http, store=FileTokenStore(path, server.http))
    async with first, second:
        await first.login("alice", PASSWORD)
        results = await asyncio.gather(first.refresh(), second.refresh())
        assert results[0] == results[1]
        assert first.refreshes + second.refreshes == 1
        assert first.rotated + second.rotated == 1
        assert (await second.me())["username"] == "alice"  # nothing was revoked
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_token_rotated_without_a_newer_token_is_raised(server):
    async with ApiClient(server.http) as api, ApiClient(server.http) as thief:
        tokens = await api.login("alice", PASSWORD)
        thief.store.save(tokens)
        await thief.refresh()
        with pytest.raises(TokenRotated):
            await api.refresh()  # our store never learns the thief's tokens


async def test_a_refresh_token_answered_token_rotated_is_never_sent_again(serve):
    """The winner of a refresh race kept its tokens to itself: ours is spent.
    Sent again past the grace it would be `token_reused`, and the server
    would revoke the session, the winner's included."""
    server = serve(AUTHSOCKET_REFRESH_GRACE=1)
    async with ApiClient(server.http) as api, ApiClient(server.http) as winner:
        winner.store.save(await api.login("alice", PASSWORD))
        await winner.refresh()
        with pytest.raises(TokenRotated):
            await api.refresh()  # waits ROTATED_WAIT (3 s) for a newer token
        with pytest.raises(TokenRotated):
            await api.refresh()  # past the grace: must not reach the server
        assert (await winner.me())["username"] == "alice"


async def test_dead_session_is_credentials_rejected_with_its_code(server):
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        await api.request("POST", "/api/auth/logout-all")
        with pytest.raises(CredentialsRejected) as rejected:
            await api.refresh()
        assert rejected.value.code == "revoked" and not rejected.value.transient
        with pytest.raises(CredentialsRejected) as rejected:
            await api.login("alice", "wrong password")
        assert rejected.value.code == "invalid_credentials"
