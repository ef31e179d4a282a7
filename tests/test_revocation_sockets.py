"""Every revocation trigger closes the session's live sockets with 4403 (docs/protocol.md §3).

Sockets are `channels.testing` communicators on the real application; the
triggers go through the HTTP API, the model signals or the service itself.
"""

import time

import pytest
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from accounts.models import AuthSession, SessionRevocation, User
from realtime.protocol import CloseCode
from realtime.tests.sockets import close_code, db, refused, still_open, welcomed
from tests.api import api_client

pytestmark = pytest.mark.django_db(transaction=True)

WITHIN = 1.0  # docs/protocol.md §3: one second, on every process


async def open_socket(ws, tokens):
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    return communicator


async def assert_revoked_fast(communicator, since: float) -> float:
    code, closed_at = await close_code(communicator, timeout=WITHIN + 1)
    assert code == CloseCode.REVOKED
    latency = closed_at - since
    assert latency < WITHIN, f"closed {latency:.3f} s after the revocation"
    return latency


async def test_logout_closes_that_sessions_socket_only(ws, alice, open_session):
    current, other = await db(open_session, alice), await db(open_session, alice)
    doomed, survivor = await open_socket(ws, current), await open_socket(ws, other)
    started = time.time()
    response = await db(api_client(current).post, "/api/auth/logout")
    assert response.status_code == 204
    await assert_revoked_fast(doomed, started)
    assert await still_open(survivor)
    await doomed.disconnect()
    await survivor.disconnect()


async def test_logout_others_closes_every_other_session_but_not_the_callers(
    ws, alice, open_session
):
    current, a, b = [await db(open_session, alice) for _ in range(3)]
    mine = await open_socket(ws, current)
    others = [await open_socket(ws, a), await open_socket(ws, b)]
    started = time.time()
    assert (
        await db(api_client(current).post, "/api/auth/logout-others")
    ).status_code == 204
    for socket in others:
        await assert_revoked_fast(socket, started)
    assert await still_open(mine)
    for socket in [mine, *others]:
        await socket.disconnect()


async def test_logout_all_closes_every_session_of_the_user_and_no_one_elses(
    ws, alice, bob, open_session
):
    current, other = await db(open_session, alice), await db(open_session, alice)
    bobs = await db(open_session, bob)
    sockets = [await open_socket(ws, current), await open_socket(ws, other)]
    bob_socket = await open_socket(ws, bobs)
    started = time.time()
    assert (
        await db(api_client(current).post, "/api/auth/logout-all")
    ).status_code == 204
    for socket in sockets:
        await assert_revoked_fast(socket, started)
    assert await still_open(bob_socket)
    for socket in [*sockets, bob_socket]:
        await socket.disconnect()


async def test_deleting_one_session_closes_its_sockets(ws, alice, open_session):
    current, other = await db(open_session, alice), await db(open_session, alice)
    mine, doomed = await open_socket(ws, current), await open_socket(ws, other)
    started = time.time()
    response = await db(
        api_client(current).delete, f"/api/auth/sessions/{other.session.sid}"
    )
    assert response.status_code == 204
    await assert_revoked_fast(doomed, started)
    assert await still_open(mine)
    await mine.disconnect()
    await doomed.disconnect()


async def test_password_change_through_the_api_closes_the_others_not_the_current(
    ws, alice, open_session
):
    current, other = await db(open_session, alice), await db(open_session, alice)
    mine, doomed = await open_socket(ws, current), await open_socket(ws, other)
    started = time.time()
    response = await db(
        api_client(current).post,
        "/api/auth/password",
        {"old_password": alice.raw_password, "new_password": "a-new-Passw0rd-42"},
        format="json",
    )
    assert response.status_code == 204
    await assert_revoked_fast(doomed, started)
    assert await still_open(mine)
    assert (await db(api_client(current).get, "/api/me")).status_code == 200
    await mine.disconnect()
    await doomed.disconnect()


async def test_refresh_token_reuse_closes_the_sessions_sockets(ws, alice, settings):
    settings.AUTHSOCKET_REFRESH_GRACE = 0
    client = api_client()
    login = await db(
        client.post,
        "/api/auth/login",
        {"username": "alice", "password": alice.raw_password},
        format="json",
    )
    first = login.json()
    communicator = ws(f"token={first['access']}")
    await welcomed(communicator)
    rotated = await db(
        client.post, "/api/auth/refresh", {"refresh": first["refresh"]}, format="json"
    )
    assert rotated.status_code == 200
    started = time.time()
    reused = await db(
        client.post, "/api/auth/refresh", {"refresh": first["refresh"]}, format="json"
    )
    assert reused.json()["code"] == "token_reused"
    await assert_revoked_fast(communicator, started)
    await communicator.disconnect()


async def test_ten_wrong_old_passwords_close_the_guessing_sessions_sockets(
    ws, alice, open_session, settings
):
    settings.AUTHSOCKET_PASSWORD_THROTTLE = "100/min"
    guessing, other = await db(open_session, alice), await db(open_session, alice)
    doomed, spared = await open_socket(ws, guessing), await open_socket(ws, other)
    wrong = {"old_password": "guess", "new_password": "a-new-Passw0rd-42"}
    for _ in range(9):
        answer = await db(
            api_client(guessing).post, "/api/auth/password", wrong, format="json"
        )
        assert answer.status_code == 400
    assert await still_open(doomed)
    started = time.time()
    await db(api_client(guessing).post, "/api/auth/password", wrong, format="json")
    await assert_revoked_fast(doomed, started)
    assert await still_open(spared)
    await spared.disconnect()
    await doomed.disconnect()


async def test_deleting_a_session_row_closes_its_sockets_and_is_logged(
    ws, alice, open_session
):
    """The sessions admin's delete (or the shell's): the API refused the row's
    tokens at once, but with no log row every process kept accepting them."""
    doomed, other = await db(open_session, alice), await db(open_session, alice)
    socket, survivor = await open_socket(ws, doomed), await open_socket(ws, other)
    started = time.time()
    await db(lambda: AuthSession.objects.filter(pk=doomed.session.pk).delete())
    await assert_revoked_fast(socket, started)
    assert await still_open(survivor)
    logged = await db(
        lambda: list(SessionRevocation.objects.values_list("sid", "reason"))
    )
    assert logged == [(doomed.session.sid, "session_deleted")]
    assert await refused(ws(f"token={doomed.access}"))
    await socket.disconnect()
    await survivor.disconnect()


def _set_password_and_save(user: User) -> None:
    """What `manage.py changepassword` and the reset form do."""
    user = User.objects.get(pk=user.pk)
    user.set_password("changed-Passw0rd-7")
    user.save()


def _admin_form_password_change(user: User) -> None:
    form = AdminPasswordChangeForm(
        User.objects.get(pk=user.pk),
        {
            "password1": "changed-Passw0rd-7",
            "password2": "changed-Passw0rd-7",
            "usable_password": "true",
        },
    )
    assert form.is_valid(), form.errors
    form.save()


def _deactivate(user: User) -> None:
    user = User.objects.get(pk=user.pk)
    user.is_active = False
    user.save()


def _delete(user: User) -> None:
    User.objects.get(pk=user.pk).delete()


@pytest.mark.parametrize(
    "change, reason",
    [
        (_set_password_and_save, "password_changed"),
        (_admin_form_password_change, "password_changed"),
        (_deactivate, "deactivated"),
        (_delete, "user_deleted"),
    ],
)
async def test_credential_changes_outside_the_api_close_every_socket(
    ws, alice, bob, open_session, change, reason
):
    sessions = [await db(open_session, alice) for _ in range(2)]
    sockets = [await open_socket(ws, tokens) for tokens in sessions]
    bob_socket = await open_socket(ws, await db(open_session, bob))
    started = time.time()
    await db(change, alice)
    for socket in sockets:
        await assert_revoked_fast(socket, started)
    assert await still_open(bob_socket)
    logged = await db(
        lambda: set(SessionRevocation.objects.values_list("sid", "reason"))
    )
    assert logged == {(tokens.session.sid, reason) for tokens in sessions}
    for socket in [*sockets, bob_socket]:
        await socket.disconnect()


def _save_other_fields(user: User) -> None:
    user = User.objects.get(pk=user.pk)
    user.first_name = "Alice"
    user.save()  # every field saved, password unchanged


async def test_saving_a_user_without_changing_credentials_revokes_nothing(
    ws, alice, open_session
):
    tokens = await db(open_session, alice)
    socket = await open_socket(ws, tokens)
    await db(_save_other_fields, alice)
    assert await still_open(socket)
    assert not await db(SessionRevocation.objects.exists)
    await socket.disconnect()


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """A 'newer' hasher Django upgrades MD5 hashes to at login (fast for tests)."""

    algorithm = "pbkdf2_fast_test"
    iterations = 2


async def test_password_hash_upgrade_at_login_revokes_nothing(
    ws, alice, open_session, settings
):
    tokens = await db(open_session, alice)
    socket = await open_socket(ws, tokens)
    settings.PASSWORD_HASHERS = [
        f"{__name__}.FastPBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    response = await db(
        api_client().post,
        "/api/auth/login",
        {"username": "alice", "password": alice.raw_password},
        format="json",
    )
    assert response.status_code == 200
    stored = await db(lambda: User.objects.get(pk=alice.pk).password)
    assert stored.startswith("pbkdf2_fast_test$")  # the hash was upgraded
    assert await still_open(socket)
    assert not await db(SessionRevocation.objects.exists)
    await socket.disconnect()


async def test_async_password_check_upgrades_the_hash_without_revoking(
    alice, open_session, settings
):
    await db(open_session, alice)
    settings.PASSWORD_HASHERS = [
        f"{__name__}.FastPBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    user = await User.objects.aget(pk=alice.pk)
    assert await user.acheck_password(alice.raw_password)
    stored = await db(lambda: User.objects.get(pk=alice.pk).password)
    assert stored.startswith("pbkdf2_fast_test$")
    assert not await db(SessionRevocation.objects.exists)
