"""API fuzzing: schemathesis against the app's own OpenAPI schema (/api/schema/).

Every operation of the schema, bounded examples, each with a fresh Bearer
token (so logout-all in one example does not turn the rest into 401s), or
a service key on /api/server/: no 5xx, and every answer matches the schema
(status, content type, body).
"""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from accounts.service_keys import service_key_create
from accounts.services import session_open
from tests.reliability import hypothesis_compat

hypothesis_compat.patch()


@pytest.fixture
def api_schema(db):
    # As Django's test client does: a request must not close the connection
    # that holds the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.from_wsgi("/api/schema/", get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


schema = schemathesis.from_pytest_fixture("api_schema")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # jsonschema


@pytest.fixture
def fuzz_user(make_user):
    return make_user("fuzz", "pw-fuzz-123456")


@pytest.fixture
def fuzz_key(db):
    return service_key_create(name="fuzz")[1]


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_by_its_schema_and_never_5xx(case, fuzz_user, fuzz_key):
    if case.path.startswith("/api/server/"):
        credentials = f"ApiKey {fuzz_key}"
    else:
        token = session_open(user=fuzz_user, user_agent="schemathesis").access
        credentials = f"Bearer {token}"
    # On the case itself, so that schemathesis' ignored_auth check can take
    # it away again and expect a 401.
    case.headers = {**(case.headers or {}), "Authorization": credentials}
    response = case.call_wsgi()
    case.validate_response(response)


def test_unknown_api_paths_are_json_404_for_every_method_with_csrf_enforced(db):
    """A real client sends no CSRF token; Django's test client skips the check."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    for method in ("get", "post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/users/-1/notify")
        assert (response.status_code, response["Content-Type"]) == (
            404,
            "application/json",
        ), method
        assert response.json()["code"] == "not_found"
