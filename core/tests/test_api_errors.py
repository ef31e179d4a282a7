"""Every error under /api/ is JSON, in debug too (docs/protocol.md §2)."""

import json

import pytest
from django.test import AsyncClient, Client

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code


def test_a_host_not_allowed_is_a_json_400(debug):
    response = Client(HTTP_HOST="evil.example").get("/api/me")
    assert_json_error(response, 400, "bad_request")


def test_a_body_over_the_upload_limit_is_a_json_400(debug, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"username": "alice", "password": "x" * 2000})
    response = Client().post("/api/auth/login", body, content_type="application/json")
    assert_json_error(response, 400, "bad_request")


async def test_the_async_stack_answers_json_too(debug):
    response = await AsyncClient().get("/api/me", headers={"host": "evil.example"})
    assert_json_error(response, 400, "bad_request")


def test_headers_set_by_other_middleware_stay(settings):
    settings.DEBUG = True
    response = Client(HTTP_HOST="evil.example").get("/api/me")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_html_pages_outside_the_api_are_left_alone(settings):
    settings.DEBUG = True
    response = Client(HTTP_HOST="evil.example").get("/")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_too_many_query_fields_is_a_json_400(debug):
    # In debug, Django's own error page fails on these and the request ended
    # in a bare 500 before the middleware caught it.
    query = "&".join(f"f{i}=1" for i in range(1001))
    response = Client().get(f"/api/me?{query}")
    assert_json_error(response, 400, "bad_request")


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_errors_are_json(debug, path):
    response = Client().post(path)
    assert_json_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_no_auth_and_ignore_a_bad_one(path):
    response = Client().get(path, headers={"authorization": "Bearer garbage"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "method, path",
    [
        ("put", "/api/me"),
        ("get", "/api/auth/password"),
        ("get", "/api/auth/ticket"),
        ("post", "/api/rooms"),
        ("get", "/api/users/1/notify"),
        ("get", "/api/server/publish"),
    ],
)
def test_a_wrong_method_is_405_before_any_authentication(method, path):
    response = getattr(Client(), method)(path)
    assert_json_error(response, 405, "method_not_allowed")


def test_a_wrong_method_is_405_before_permissions(alice, open_session):
    tokens = open_session(alice)
    response = Client().get(
        "/api/users/1/notify", headers={"authorization": f"Bearer {tokens.access}"}
    )
    assert_json_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize("accept", ["text/html", "application/xml"])
def test_an_accept_the_api_cannot_meet_still_gets_its_json_401(accept):
    response = Client().get("/api/me", headers={"accept": accept})
    assert_json_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"


def test_an_accept_the_api_cannot_meet_still_gets_its_json_answer(alice, open_session):
    tokens = open_session(alice)
    response = Client().get(
        "/api/me",
        headers={"authorization": f"Bearer {tokens.access}", "accept": "text/html"},
    )
    assert (response.status_code, response.json()["username"]) == (200, "alice")


@pytest.mark.parametrize(
    "path, accept, content_type",
    [
        ("/api/docs/", "application/json", "text/html"),
        ("/api/schema/", "text/html", "application/vnd.oai.openapi"),
    ],
)
def test_schema_and_docs_answer_whatever_the_accept(path, accept, content_type):
    response = Client().get(path, headers={"accept": accept})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)


def test_an_unknown_format_is_still_a_json_404():
    response = Client().get("/api/schema/?format=xml")
    assert_json_error(response, 404, "not_found")
