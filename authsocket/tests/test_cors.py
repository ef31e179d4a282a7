"""CORS for the HTTP API (docs/protocol.md §1 `AUTHSOCKET_CORS_ORIGINS`, §2).

No other site by default; the origins listed may call `/api/` from a browser
with the Bearer header, JSON bodies and the cookie mode's custom header.
"""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

SITE = "https://app.example"


@pytest.fixture
def cors_site(settings):
    settings.CORS_ALLOWED_ORIGINS = [SITE]


def preflight(path: str, origin: str, headers: str = "authorization"):
    return Client().options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": headers,
        },
    )


def test_no_other_site_is_allowed_by_default():
    response = preflight("/api/auth/login", SITE)
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Origin" not in Client().get(
        "/api/me", headers={"origin": SITE}
    )


def test_a_listed_site_may_send_the_bearer_json_and_cookie_mode_headers(cors_site):
    response = preflight(
        "/api/auth/refresh", SITE, "authorization, content-type, x-authsocket-cookie"
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SITE
    assert response["Access-Control-Allow-Credentials"] == "true"
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-authsocket-cookie"} <= allowed


def test_a_site_not_listed_gets_no_cors_headers(cors_site):
    response = preflight("/api/auth/login", "https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


def test_a_listed_site_can_read_retry_after_and_www_authenticate(cors_site):
    response = Client().get("/api/me", headers={"origin": SITE})
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == SITE
    exposed = {
        h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")
    }
    assert {"retry-after", "www-authenticate"} <= exposed


def test_cors_is_for_the_api_only(cors_site):
    response = Client().get("/", headers={"origin": SITE})
    assert "Access-Control-Allow-Origin" not in response
