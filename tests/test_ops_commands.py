"""Management commands refuse what the server could not use: a message, not a traceback.

A command given an argument it cannot honour says why and exits non-zero
(CommandError); it never stores or prints something the running server then
fails on.
"""

import sqlite3
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import User
from realtime.models import Message
from tests.servers import manage, run_manage, server_env, sqlite_url
from tests.services import postgres_database

pytestmark = pytest.mark.django_db

USERNAME_MAX = User._meta.get_field("username").max_length


def test_notify_text_over_the_message_limit_is_a_usage_error(alice, settings):
    """The API answers 400 to data over AUTHSOCKET_MAX_MESSAGE_BYTES; the
    command raised InvalidData from deep in the publisher (a traceback)."""
    settings.AUTHSOCKET_MAX_MESSAGE_BYTES = 1024
    with pytest.raises(CommandError, match="larger than 1024 bytes"):
        call_command("notify", "alice", "x" * 2000)
    assert not Message.objects.exists()


def test_notify_text_over_the_limit_from_a_shell_is_a_message(tmp_path):
    env = server_env(sqlite_url(tmp_path), AUTHSOCKET_MAX_MESSAGE_BYTES="1024")
    manage(env, "migrate", "--noinput")
    manage(env, "demo_data")
    result = run_manage(env, "notify", "alice", "x" * 2000, timeout=60)
    assert result.returncode == 1
    assert "CommandError: Data is larger than 1024 bytes." in result.stderr
    assert "Traceback" not in result.stderr


def test_mint_tokens_refuses_a_ttl_beyond_the_session(db):
    """A token outliving its session is refused at its first use anyway, and
    an `exp` past what a ticket row holds (PostgreSQL `integer`, 2038) made
    POST /api/auth/ticket a 500: the lifetime is bounded by the session's."""
    longest = settings.AUTHSOCKET_REFRESH_TTL
    with pytest.raises(CommandError, match=f"--ttl must be between 1 and {longest}"):
        call_command("mint_tokens", "--users", "1", "--ttl", str(longest + 1))
    assert not User.objects.exists()


def test_mint_tokens_at_the_longest_ttl_gets_a_ticket(db, client, settings):
    out = StringIO()
    call_command(
        "mint_tokens",
        "--users",
        "1",
        "--ttl",
        str(settings.AUTHSOCKET_REFRESH_TTL),
        stdout=out,
    )
    response = client.post(
        "/api/auth/ticket", HTTP_AUTHORIZATION=f"Bearer {out.getvalue().strip()}"
    )
    assert response.status_code == 200, response.content


def test_mint_tokens_refuses_a_prefix_that_makes_usernames_too_long(db):
    """Usernames are at most 150 characters: PostgreSQL refused the longer
    ones with a DataError traceback (SQLite stored them)."""
    with pytest.raises(CommandError, match="--prefix"):
        call_command("mint_tokens", "--users", "10", "--prefix", "p" * USERNAME_MAX)
    assert not User.objects.exists()
    # The longest that fits: `<prefix>9` is exactly the limit.
    call_command(
        "mint_tokens",
        "--users",
        "10",
        "--prefix",
        "p" * (USERNAME_MAX - 1),
        stdout=StringIO(),
    )
    assert User.objects.count() == 10


@pytest.mark.parametrize("prefix", ["has space", "evil\n", "a/b", "\x1b[31m"])
def test_mint_tokens_refuses_a_prefix_no_username_may_hold(db, prefix):
    """`bulk_create` skips validation: such users were made, and no form
    would accept them after."""
    with pytest.raises(CommandError, match="--prefix may hold only"):
        call_command("mint_tokens", "--users", "1", "--prefix", prefix)
    assert not User.objects.exists()


def test_mint_tokens_refuses_to_print_tokens_of_deactivated_users(db):
    User.objects.create_user(username="bench1", is_active=False)
    with pytest.raises(CommandError, match=r"1 of these users are deactivated"):
        call_command("mint_tokens", "--users", "3", stdout=StringIO())
    assert User.objects.count() == 1


def test_mint_tokens_stays_under_the_databases_parameter_limit(db):
    """One `username IN (…)` of every name failed above SQLite's limit of
    bound parameters (32,766 on a stock build), which --users reaches."""
    if connection.vendor != "sqlite":
        pytest.skip("the limit lowered here is SQLite's")
    connection.ensure_connection()
    limit = sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
    before = connection.connection.setlimit(limit, 1000)
    try:
        out = StringIO()
        call_command("mint_tokens", "--users", "1200", stdout=out)
    finally:
        connection.connection.setlimit(limit, before)
    assert len(out.getvalue().split()) == 1200


def test_a_ticket_for_a_token_expiring_after_2038_is_stored_on_postgresql():
    """A ticket keeps its access token's `exp`: PostgreSQL's `integer` ends in
    January 2038 (2**31 - 1), a date tokens reach long before tickets go."""
    with postgres_database() as database_url:
        env = server_env(database_url)
        manage(env, "migrate", "--noinput")
        out = manage(
            env,
            "shell",
            "-c",
            "from accounts.models import User;"
            "from accounts.services import session_open, ticket_issue, ticket_consume;"
            "user = User.objects.create_user('ada', password='pw-ada-12345');"
            "session = session_open(user=user, user_agent='test').session;"
            "ticket, _ = ticket_issue(session=session, access_expires_at=2**31 + 60);"
            "print(ticket_consume(ticket=ticket).access_expires_at)",
        )
        assert out.strip().splitlines()[-1] == str(2**31 + 60)
