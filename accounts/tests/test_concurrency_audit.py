"""The accounts API's credentials under concurrent use, on PostgreSQL.

Each test forces one interleaving between two database sessions in two
processes (`tests.db_scripts`): one holds a transaction open until the test
releases it, or stops right after a chosen statement, while the other acts.
No timing luck: the order is the one chosen here, and every wait is bounded.
What is checked is docs/protocol.md §2.3 and §3: a rotation and a ticket
have one winner, a refresh never answers with tokens for a session revoked
before it finished, and no login outlives the password it was made with.
"""

import json
import threading
import uuid

import psycopg
import pytest
from django.db import connections
from rest_framework.test import APIClient

from accounts.models import AuthSession
from accounts.services import session_logout
from tests.db_scripts import (
    Script,
    blocked_on_a_lock,
)

on_postgres = pytest.mark.services

OLD_PASSWORD = "old-pw-racing-1234"
NEW_PASSWORD = "new-pw-racing-5678"

SETUP = """
import json
from accounts.models import AuthSession, User
from accounts.services import session_open, ticket_issue
user = User.objects.create_user(username={username!r}, password={password!r})
a, b = session_open(user=user), session_open(user=user)
AuthSession.objects.filter(pk=a.session.pk).update(wrong_password_attempts={attempts})
ticket, _ = ticket_issue(session=a.session, access_expires_at=a.access_expires_at)
print(json.dumps({{"user": user.pk, "username": user.username, "ticket": ticket,
    "a": a.refresh, "a_sid": a.session.sid, "b": b.refresh, "b_sid": b.session.sid}}),
    flush=True)
"""

# Runs `{action}` in a transaction kept open until the test releases it.
HOLD = """
import sys
from django.db import transaction
from accounts import services
from accounts.errors import WrongPassword
from accounts.models import AuthSession, User
with transaction.atomic():
    try:
        {action}
    except WrongPassword:
        pass
    print("held", flush=True)
    sys.stdin.readline()  # committed when the test says so
print("committed", flush=True)
"""

# Prints the outcome of `{call}`: "ok" or the error's wire code.
ACT = """
from accounts import services
from accounts.errors import AuthError
from accounts.models import AuthSession, User
try:
    {call}
except AuthError as exc:
    print(exc.code, flush=True)
else:
    print("ok", flush=True)
"""

# Like ACT, but stops (until released) right after the first statement
# whose SQL holds `{fragment}`: another session then acts in that window.
ACT_PAUSED = """
import sys
from django.db import connection
from accounts import services
from accounts.errors import AuthError
from accounts.models import AuthSession, User
state = {{"done": False}}
def pause(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if not state["done"] and {fragment!r} in sql:
        state["done"] = True
        print("paused", flush=True)
        sys.stdin.readline()
    return result
with connection.execute_wrapper(pause):
    try:
        {call}
    except AuthError as exc:
        print(exc.code, flush=True)
    else:
        print("ok", flush=True)
"""

REFRESH = "services.session_refresh(refresh_token={token!r})"
SESSION = "AuthSession.objects.get(sid={sid!r})"

# Every way the API revokes session `a`, called as the API calls it.
REVOCATIONS = {
    "logout": f"services.session_logout(session={SESSION.format(sid='{a_sid}')})",
    "logout-others": "services.session_logout_others("
    f"session={SESSION.format(sid='{b_sid}')})",
    "logout-all": "services.session_logout_all(user=User.objects.get(pk={user}))",
    "delete": "services.session_delete("
    "user=User.objects.get(pk={user}), sid={a_sid!r})",
    "password": "services.password_change("
    f"session={SESSION.format(sid='{b_sid}')}, "
    f"old_password={OLD_PASSWORD!r}, new_password={NEW_PASSWORD!r})",
    "deactivate": "user = User.objects.get(pk={user}); user.is_active = False; "
    "user.save()",
}


@pytest.fixture
def user(scripts):
    """A user with two sessions `a` and `b` and a ticket of `a` (names, tokens)."""

    def make(attempts: int = 0) -> dict:
        username = f"racer-{uuid.uuid4().hex[:12]}"
        setup = scripts(
            SETUP.format(username=username, password=OLD_PASSWORD, attempts=attempts)
        )
        made = json.loads(setup.line())
        setup.finish()
        return made

    return make


def query(dsn: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def live_refresh_tokens(dsn: str, sid: str) -> int:
    """Refresh tokens of `sid` that would still be accepted, counted."""
    return query(
        dsn,
        "SELECT count(*) FROM accounts_refreshtoken t"
        " JOIN accounts_authsession s ON s.id = t.session_id"
        " WHERE s.sid = %s AND t.rotated_at IS NULL AND s.revoked_at IS NULL",
        sid,
    )[0][0]


def held(scripts, action: str) -> Script:
    holder = scripts(HOLD.format(action=action))
    assert holder.line() == "held"
    return holder


def commit(holder: Script) -> None:
    holder.release()
    assert holder.line() == "committed"
    holder.finish()


def outcome(actor: Script) -> str:
    line = actor.line()
    actor.finish()
    return line


def paused_then_raced(
    scripts, dsn: str, *, first: str, paused_after: str, second: str
) -> tuple[str, str]:
    """`first` runs until its statement containing `paused_after` has taken
    its locks; `second` starts and waits on one of them; `first` goes on.
    The outcome of each, in that order."""
    ahead = scripts(ACT_PAUSED.format(fragment=paused_after, call=first))
    assert ahead.line() == "paused"
    behind = scripts(ACT.format(call=second))
    blocked_on_a_lock(dsn)
    ahead.release()
    return outcome(ahead), outcome(behind)


@on_postgres
def test_two_refreshes_with_one_token_have_one_winner(database, scripts, user):
    """The loser waits for the winner's rotation and is told `token_rotated`
    (within the grace): never two new pairs, never a 500."""
    _, dsn = database
    made = user()
    winner = held(scripts, REFRESH.format(token=made["a"]))
    loser = scripts(ACT.format(call=REFRESH.format(token=made["a"])))
    blocked_on_a_lock(dsn)
    commit(winner)
    assert outcome(loser) == "token_rotated"
    assert live_refresh_tokens(dsn, made["a_sid"]) == 1
    assert query(
        dsn, "SELECT revoked_at FROM accounts_authsession WHERE sid = %s", made["a_sid"]
    ) == [(None,)]


@on_postgres
@pytest.mark.parametrize("revocation", sorted(REVOCATIONS))
def test_a_refresh_waiting_on_a_revocation_is_refused(
    database, scripts, user, revocation
):
    """A refresh that read the session as live, then waited for a revocation
    of it to commit, answers 401 `revoked` and leaves no live token behind:
    not a new pair for a session that is already gone."""
    _, dsn = database
    made = user()
    revoker = held(scripts, REVOCATIONS[revocation].format(**made))
    refresher = scripts(ACT.format(call=REFRESH.format(token=made["a"])))
    blocked_on_a_lock(dsn)
    commit(revoker)
    assert outcome(refresher) == "revoked"
    assert live_refresh_tokens(dsn, made["a_sid"]) == 0


@on_postgres
def test_a_ticket_used_twice_at_once_is_accepted_once(database, scripts, user):
    """Two handshakes on two processes with one ticket: the second waits for
    the first's use to commit, then finds the ticket spent."""
    _, dsn = database
    made = user()
    consume = "services.ticket_consume(ticket={ticket!r})".format(**made)
    first = held(scripts, consume)
    second = scripts(ACT.format(call=consume))
    blocked_on_a_lock(dsn)
    commit(first)
    assert outcome(second) == "invalid_token"


def guesses(made: dict) -> tuple[str, str]:
    """A wrong old password of session `a`: its count alone (held open by a
    test while the user's row is free), and the whole API call."""
    session = SESSION.format(sid=made["a_sid"])
    return (
        f"services._password_guess_record(session={session})",
        f"services.password_change(session={session}, old_password='wrong', "
        "new_password='whatever-9876')",
    )


@on_postgres
def test_concurrent_wrong_passwords_lose_no_count(database, scripts, user):
    """The ninth and tenth wrong old passwords at once: the tenth waits for
    the ninth's count, counts 10 and revokes the session, once."""
    _, dsn = database
    made = user(attempts=8)
    counted, guess = guesses(made)
    ninth = held(scripts, counted)
    tenth = scripts(ACT.format(call=guess))
    blocked_on_a_lock(dsn)
    commit(ninth)
    assert outcome(tenth) == "wrong_password"
    assert query(
        dsn,
        "SELECT wrong_password_attempts, revoke_reason FROM accounts_authsession"
        " WHERE sid = %s",
        made["a_sid"],
    ) == [(10, "password_guessing")]
    assert query(
        dsn,
        "SELECT reason FROM accounts_sessionrevocation WHERE sid = %s",
        made["a_sid"],
    ) == [("password_guessing",)]


@on_postgres
def test_a_guess_past_the_limit_does_not_revoke_again(database, scripts, user):
    """The tenth guess revokes; an eleventh that waited for it adds no second
    revocation (one log row, one announcement)."""
    _, dsn = database
    made = user(attempts=9)
    counted, guess = guesses(made)
    tenth = held(scripts, counted)
    eleventh = scripts(ACT.format(call=guess))
    blocked_on_a_lock(dsn)
    commit(tenth)
    assert outcome(eleventh) in {"wrong_password", "revoked"}
    assert query(
        dsn,
        "SELECT reason FROM accounts_sessionrevocation WHERE sid = %s",
        made["a_sid"],
    ) == [("password_guessing",)]


@on_postgres
def test_a_login_checked_against_a_password_changed_meanwhile_is_refused(
    database, scripts, user
):
    """The old password was checked, then changed (all other sessions revoked)
    before the login stored its session: that login must not survive the
    change it raced with."""
    _, dsn = database
    made = user()
    login = (
        "services.session_login(request=None, username={username!r}, "
        "password={password!r})"
    ).format(username=made["username"], password=OLD_PASSWORD)
    actor = scripts(ACT_PAUSED.format(fragment='FROM "accounts_user"', call=login))
    assert actor.line() == "paused"  # the old hash is read
    changer = scripts(ACT.format(call=REVOCATIONS["password"].format(**made)))
    assert outcome(changer) == "ok"
    actor.release()
    assert outcome(actor) == "invalid_credentials"
    live = query(
        dsn,
        "SELECT count(*) FROM accounts_authsession WHERE user_id = %s"
        " AND revoked_at IS NULL",
        made["user"],
    )
    assert live == [(1,)]  # the changer's own session only


@on_postgres
def test_two_password_changes_at_once_leave_the_first_ones_password(
    database, scripts, user
):
    """Sessions `a` and `b` change the password at once. `a` waits for `b`,
    whose change revoked `a`: `a` is refused (401 `revoked`) and sets nothing,
    so `b` keeps its session and its password, as if they had taken turns."""
    _, dsn = database
    made = user()
    first = held(scripts, REVOCATIONS["password"].format(**made))
    second = scripts(
        ACT.format(
            call=f"services.password_change(session={SESSION.format(sid=made['a_sid'])}, "
            f"old_password={OLD_PASSWORD!r}, new_password='third-pw-racing-9012')"
        )
    )
    blocked_on_a_lock(dsn)
    commit(first)
    assert outcome(second) == "revoked"
    live = query(
        dsn,
        "SELECT sid FROM accounts_authsession WHERE user_id = %s"
        " AND revoked_at IS NULL",
        made["user"],
    )
    assert live == [(made["b_sid"],)]
    check = scripts(
        ACT.format(
            call=f"assert User.objects.get(pk={made['user']})"
            f".check_password({NEW_PASSWORD!r})"
        )
    )
    assert outcome(check) == "ok"


@pytest.mark.django_db(transaction=True)
def test_a_password_change_whose_session_is_revoked_meanwhile_is_401(
    alice, open_session
):
    """The Bearer token was accepted, then its session revoked (another tab's
    logout) before the change began: 401 `revoked`, and the password stays,
    as if the logout had come first."""
    tokens = open_session(alice)
    state = {"done": False}

    def logout_elsewhere(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not state["done"] and 'FROM "accounts_authsession" INNER JOIN' in sql:
            state["done"] = True  # the Bearer token's session was found live
            thread = threading.Thread(target=logout_on_another_connection)
            thread.start()
            thread.join(timeout=10)
            assert not thread.is_alive()
        return result

    def logout_on_another_connection():
        try:
            session_logout(session=AuthSession.objects.get(pk=tokens.session.pk))
        finally:
            connections.close_all()

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access}")
    with connections["default"].execute_wrapper(logout_elsewhere):
        response = client.post(
            "/api/auth/password",
            {"old_password": alice.raw_password, "new_password": NEW_PASSWORD},
            format="json",
        )
    assert state["done"]
    assert response.status_code == 401
    assert response.json()["code"] == "revoked"
    alice.refresh_from_db()
    assert alice.check_password(alice.raw_password)


# Lock order (accounts.revocation): the user's row, then its sessions. Each
# test below holds one side right after its first lock and lets the other run
# into it; taken in opposite orders, PostgreSQL aborts one of them with a
# deadlock error (a 500 for the request, a failed admin deletion).
DELETIONS = {
    "instance": "User.objects.get(pk={user}).delete()",
    "queryset": "User.objects.filter(pk={user}).delete()",
    # The admin's delete view, minus the confirmation page.
    "admin": "__import__('django.contrib.admin').contrib.admin.site._registry[User]"
    ".delete_model(None, User.objects.get(pk={user}))",
}


def deleted_completely(dsn: str, made: dict) -> None:
    """The user is gone with its sessions, both logged as revoked by the
    deletion or by the password change that came first."""
    assert query(dsn, "SELECT 1 FROM accounts_user WHERE id = %s", made["user"]) == []
    logged = query(
        dsn,
        "SELECT sid FROM accounts_sessionrevocation WHERE user_id = %s",
        made["user"],
    )
    assert {made["a_sid"], made["b_sid"]} <= {sid for (sid,) in logged}


@on_postgres
@pytest.mark.parametrize("deletion", sorted(DELETIONS))
def test_a_password_change_waiting_on_a_user_deletion_is_refused(
    database, scripts, user, deletion
):
    """The deletion has taken its first lock when the password change of the
    same user starts: the change waits for the whole deletion, then answers
    401 `revoked`; never a deadlock on either side."""
    _, dsn = database
    made = user()
    assert paused_then_raced(
        scripts,
        dsn,
        first=DELETIONS[deletion].format(**made),
        paused_after="FOR UPDATE",
        second=REVOCATIONS["password"].format(**made),
    ) == ("ok", "revoked")
    deleted_completely(dsn, made)


@on_postgres
@pytest.mark.parametrize("deletion", sorted(DELETIONS))
def test_a_user_deletion_waiting_on_a_password_change_completes(
    database, scripts, user, deletion
):
    """The password change holds the user's row when the deletion starts:
    the deletion waits for the change (which revokes the other session), then
    deletes the user; never a deadlock on either side."""
    _, dsn = database
    made = user()
    assert paused_then_raced(
        scripts,
        dsn,
        first=REVOCATIONS["password"].format(**made),
        paused_after="FOR NO KEY UPDATE",
        second=DELETIONS[deletion].format(**made),
    ) == ("ok", "ok")
    deleted_completely(dsn, made)


@on_postgres
@pytest.mark.parametrize("deletion", sorted(DELETIONS))
def test_a_login_waiting_on_a_user_deletion_leaves_no_session(
    database, scripts, user, deletion
):
    """A login that checked the password holds the user's row when the user
    is deleted: the deletion waits for the login's commit and deletes the
    session it made too, instead of failing on it (an IntegrityError)."""
    _, dsn = database
    made = user()
    login = (
        "services.session_login(request=None, username={username!r}, "
        "password={password!r})"
    ).format(username=made["username"], password=OLD_PASSWORD)
    assert paused_then_raced(
        scripts,
        dsn,
        first=login,
        paused_after="FOR NO KEY UPDATE",
        second=DELETIONS[deletion].format(**made),
    ) == ("ok", "ok")
    deleted_completely(dsn, made)
    assert (
        query(
            dsn, "SELECT 1 FROM accounts_authsession WHERE user_id = %s", made["user"]
        )
        == []
    )


@on_postgres
@pytest.mark.parametrize("caller", ["a_sid", "b_sid"], ids=["older", "newer"])
def test_a_logout_all_waiting_on_a_password_change_completes(
    database, scripts, user, caller
):
    """A right old password after wrong ones resets the caller's count (a
    write to its session) before the others are revoked. A logout-all of the
    same user then must not hold another session the change still wants:
    both complete, in turn, whichever of the two sessions is the caller."""
    _, dsn = database
    made = user()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE accounts_authsession SET wrong_password_attempts = 3"
            " WHERE sid = %s",
            (made[caller],),
        )
    change = (
        f"services.password_change(session={SESSION.format(sid=made[caller])}, "
        f"old_password={OLD_PASSWORD!r}, new_password={NEW_PASSWORD!r})"
    )
    assert paused_then_raced(
        scripts,
        dsn,
        first=change,
        paused_after='SET "wrong_password_attempts"',
        second=REVOCATIONS["logout-all"].format(**made),
    ) == ("ok", "ok")
    assert query(
        dsn,
        "SELECT count(*) FROM accounts_authsession WHERE user_id = %s"
        " AND revoked_at IS NULL",
        made["user"],
    ) == [(0,)]


TICKET_ISSUE = (
    f"services.ticket_issue(session={SESSION.format(sid='{a_sid}')}, "
    "access_expires_at=2**31 - 1)"
)


def tickets_of(dsn: str, sid: str) -> int:
    return query(
        dsn,
        "SELECT count(*) FROM accounts_websocketticket t"
        " JOIN accounts_authsession s ON s.id = t.session_id WHERE s.sid = %s",
        sid,
    )[0][0]


@on_postgres
@pytest.mark.parametrize(
    "ending",
    sorted(REVOCATIONS) + sorted(DELETIONS),
)
def test_a_ticket_asked_for_while_its_session_ends_is_refused(
    database, scripts, user, ending
):
    """A ticket request that read its session as live, then waited for a
    revocation or a deletion of it to commit, answers 401 `revoked`: not a
    ticket for a session that is gone, nor an IntegrityError (a 500)."""
    _, dsn = database
    made = user()
    action = {**REVOCATIONS, **DELETIONS}[ending].format(**made)
    before = tickets_of(dsn, made["a_sid"])
    ender = held(scripts, action)
    asker = scripts(ACT.format(call=TICKET_ISSUE.format(**made)))
    blocked_on_a_lock(dsn)
    commit(ender)
    assert outcome(asker) == "revoked"
    assert tickets_of(dsn, made["a_sid"]) == (0 if ending in DELETIONS else before)
