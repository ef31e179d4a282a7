"""The admin's login form counts on the API login's throttles (same counters)."""

import pytest
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ROOT_PASSWORD = "pw-root-123"


@pytest.fixture
def root(make_user):
    return make_user("root", ROOT_PASSWORD, is_staff=True, is_superuser=True)


def admin_login(client: Client, username: str, password: str, **headers):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        **headers,
    )


def api_login(username: str, password: str, **headers):
    return APIClient().post(
        "/api/auth/login",
        {"username": username, "password": password},
        format="json",
        **headers,
    )


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response["Content-Type"].startswith("text/plain")


def test_fifteen_wrong_posts_then_the_right_password_is_429(root):
    client = Client()
    codes = [admin_login(client, "root", f"guess-{i}").status_code for i in range(15)]
    assert codes == [200] * 10 + [429] * 5  # AUTHSOCKET_LOGIN_THROTTLE, 10/min
    assert_throttled(admin_login(client, "root", ROOT_PASSWORD))
    assert not logged_in(client)


def test_right_password_passes_below_the_limit(root):
    client = Client()
    assert admin_login(client, "root", "guess").status_code == 200
    response = admin_login(client, "root", ROOT_PASSWORD)
    assert (response.status_code, response.url) == (302, "/admin/")
    assert logged_in(client)


def test_api_and_admin_logins_share_the_per_username_counter(root, settings):
    settings.AUTHSOCKET_LOGIN_THROTTLE = "4/min"
    assert api_login("ROOT", "guess").status_code == 401  # case-folded: same key
    assert api_login("root", "guess").status_code == 401
    client = Client()
    assert admin_login(client, "Root", "guess").status_code == 200
    assert admin_login(client, "root", "guess").status_code == 200
    assert_throttled(admin_login(client, "root", ROOT_PASSWORD))
    assert api_login("root", ROOT_PASSWORD).json()["code"] == "throttled"
    assert admin_login(client, "someone-else", "guess").status_code == 200


def test_api_and_admin_logins_share_the_per_address_counter(root, settings):
    settings.AUTHSOCKET_LOGIN_ADDRESS_THROTTLE = "3/min"
    assert api_login("user0", "guess").status_code == 401
    client = Client()
    assert admin_login(client, "user1", "guess").status_code == 200
    assert api_login("user2", "guess").status_code == 401
    assert_throttled(admin_login(client, "root", ROOT_PASSWORD))
    assert api_login("user3", "guess").status_code == 429


def test_getting_the_login_page_counts_nothing(root, settings):
    settings.AUTHSOCKET_LOGIN_THROTTLE = "2/min"
    client = Client()
    assert {client.get("/admin/login/").status_code for _ in range(10)} == {200}
    assert admin_login(client, "root", ROOT_PASSWORD).status_code == 302


def test_the_address_is_found_as_the_api_finds_it(root, settings):
    settings.AUTHSOCKET_LOGIN_THROTTLE = "2/min"
    # No trusted proxy: a forged X-Forwarded-For does not make a new address.
    codes = [
        admin_login(Client(), "root", "guess", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
        for i in range(3)
    ]
    assert [r.status_code for r in codes] == [200, 200, 429]
    # One trusted proxy: the forwarded address is the client's, on both forms.
    settings.REST_FRAMEWORK = {**django_settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    near = {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert admin_login(Client(), "root", "guess", **near).status_code == 200
    assert api_login("root", "guess", **near).status_code == 401
    assert_throttled(admin_login(Client(), "root", ROOT_PASSWORD, **near))
    far = {"HTTP_X_FORWARDED_FOR": "198.51.100.9"}
    assert admin_login(Client(), "root", ROOT_PASSWORD, **far).status_code == 302


def change_password(client: Client, old: str):
    """A password change whose new passwords differ: nothing is ever changed,
    but the answer says whether `old` was right."""
    return client.post(
        "/admin/password_change/",
        {
            "old_password": old,
            "new_password1": "a-new-pw-1234",
            "new_password2": "other-1234",
        },
    )


def test_the_password_change_form_counts_on_the_apis_password_throttle(root):
    """It told a right old password from a wrong one as often as asked:
    now 5 a minute (AUTHSOCKET_PASSWORD_THROTTLE), the API's counter."""
    client = Client()
    client.force_login(root)
    codes = [change_password(client, f"guess-{i}").status_code for i in range(5)]
    assert codes == [200] * 5
    assert_throttled(change_password(client, ROOT_PASSWORD))
    assert client.get("/admin/password_change/").status_code == 200  # GETs are free


def test_the_password_change_form_is_still_staff_only(make_user):
    client = Client()
    client.force_login(make_user("plain", "pw-plain-123"))
    response = client.post("/admin/password_change/", {"old_password": "pw-plain-123"})
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")
