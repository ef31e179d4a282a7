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
