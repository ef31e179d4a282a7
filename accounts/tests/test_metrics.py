"""Accounts-side metrics: throttling by scope, revocations by reason."""

import pytest
from rest_framework.test import APIClient

from tests.api import api_client
from tests.metrics import value

pytestmark = pytest.mark.django_db(transaction=True)


def login(client, username, password="wrong"):
    return client.post(
        "/api/auth/login", {"username": username, "password": password}, format="json"
    )


@pytest.mark.parametrize(
    "setting, usernames, scope",
    [
        ("AUTHSOCKET_LOGIN_THROTTLE", ["alice"] * 3, "login"),
        ("AUTHSOCKET_LOGIN_ADDRESS_THROTTLE", ["u1", "u2", "u3"], "login_address"),
    ],
)
def test_a_throttled_login_counts_under_its_scope(
    alice, settings, setting, usernames, scope
):
    setattr(settings, setting, "2/min")
    before = value("authsocket_throttled_total", scope=scope)
    client = APIClient()
    codes = [login(client, name).status_code for name in usernames]
    assert codes == [401, 401, 429]
    assert value("authsocket_throttled_total", scope=scope) == before + 1


def test_a_throttled_ticket_counts_under_ticket(alice, open_session, settings):
    settings.AUTHSOCKET_TICKET_THROTTLE = "1/min"
    client = api_client(open_session(alice))
    before = value("authsocket_throttled_total", scope="ticket")
    codes = [client.post("/api/auth/ticket").status_code for _ in range(2)]
    assert codes == [200, 429]
    assert value("authsocket_throttled_total", scope="ticket") == before + 1


def test_logout_others_counts_each_revoked_session_under_its_reason(
    alice, open_session
):
    current = open_session(alice)
    open_session(alice), open_session(alice)
    before = value("authsocket_revocations_total", reason="logout_others")
    assert api_client(current).post("/api/auth/logout-others").status_code == 204
    assert value("authsocket_revocations_total", reason="logout_others") == before + 2
