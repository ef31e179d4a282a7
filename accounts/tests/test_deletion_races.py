"""A user (or one login session) deleted while one of its credentials is in use.

The admin, a shell or `user.delete()` on another process may remove the rows
between two statements of a refresh or a ticket's use. Each statement is
conditional, so the credential simply stops being one: never an unhandled
`DoesNotExist` or `IntegrityError` (a 500, or a handshake that crashes
instead of being refused; docs/protocol.md §2 and §4.1). The deletion is
made to land exactly between the two statements by a database wrapper,
on another connection, as another process would.
"""

import threading

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from accounts.errors import AuthError
from accounts.models import AuthSession, User
from accounts.services import ticket_consume, ticket_issue

pytestmark = pytest.mark.django_db(transaction=True)


def delete_elsewhere(target) -> None:
    """Delete `target` (signals and cascade included) on another connection."""

    def delete():
        try:
            type(target).objects.get(pk=target.pk).delete()
        finally:
            connections.close_all()

    thread = threading.Thread(target=delete)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()


def delete_around(statement: str, target, *, after: bool):
    """A wrapper that deletes `target` elsewhere once, just before or after the
    first query containing `statement`."""
    state = {"done": False}

    def wrapper(execute, sql, params, many, context):
        hit = not state["done"] and statement in sql
        if hit:
            state["done"] = True
            if not after:
                delete_elsewhere(target)
        result = execute(sql, params, many, context)
        if hit and after:
            delete_elsewhere(target)
        return result

    return wrapper


def refresh(token: str):
    return APIClient().post("/api/auth/refresh", {"refresh": token}, format="json")


@pytest.mark.parametrize(
    "statement, after",
    [
        ('UPDATE "accounts_refreshtoken" SET "rotated_at"', False),
        ('UPDATE "accounts_refreshtoken" SET "rotated_at"', True),
    ],
    ids=["before-rotation", "after-rotation"],
)
@pytest.mark.parametrize("deleted", ["user", "session"])
def test_a_refresh_racing_a_deletion_is_401_invalid_token(
    alice, open_session, statement, after, deleted
):
    tokens = open_session(alice)
    target = alice if deleted == "user" else AuthSession.objects.get()
    with connection.execute_wrapper(delete_around(statement, target, after=after)):
        response = refresh(tokens.refresh)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert not AuthSession.objects.exists()
    assert User.objects.filter(username="alice").exists() == (deleted == "session")


@pytest.mark.parametrize("deleted", ["user", "session"])
def test_a_ticket_used_while_its_session_is_deleted_is_refused(
    alice, open_session, deleted
):
    tokens = open_session(alice)
    ticket, _ = ticket_issue(
        session=tokens.session, access_expires_at=tokens.access_expires_at
    )
    target = alice if deleted == "user" else tokens.session
    statement = 'UPDATE "accounts_websocketticket" SET "used_at"'
    with (
        connection.execute_wrapper(delete_around(statement, target, after=True)),
        pytest.raises(AuthError) as refused,
    ):
        ticket_consume(ticket=ticket)
    assert refused.value.code == "invalid_token"
