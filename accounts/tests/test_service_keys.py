"""Service keys (docs/protocol.md §7): storage, lookup, command, admin, logs."""

import hashlib
import logging
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.errors import InvalidServiceKey, ServiceKeyNameTaken
from accounts.models import ServiceKey
from accounts.service_keys import (
    KEY_PREFIX,
    service_key_authenticate,
    service_key_create,
    service_key_revoke,
)
from authsocket.logging import RedactSecretsFilter, redact

pytestmark = pytest.mark.django_db


def test_a_key_is_prefixed_256_random_bits_stored_only_as_its_sha256():
    key, raw = service_key_create(name="billing")
    assert re.fullmatch(r"ask_[A-Za-z0-9_-]{43}", raw)  # 32 bytes, URL-safe
    assert key.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert key.prefix == raw[:12] and raw not in str(ServiceKey.objects.values())
    assert ServiceKey._meta.get_field("digest").unique  # the index a lookup uses


def test_authenticate_finds_the_live_key_and_refuses_others():
    key, raw = service_key_create(name="billing")
    assert service_key_authenticate(raw=raw) == key
    for bad in [raw[:-1], raw + "x", raw[len(KEY_PREFIX) :], "", "ask_" + "a" * 500]:
        with pytest.raises(InvalidServiceKey):
            service_key_authenticate(raw=bad)
    assert service_key_revoke(name="billing") == 1
    with pytest.raises(InvalidServiceKey):
        service_key_authenticate(raw=raw)


def test_last_used_is_written_at_most_once_a_minute(django_assert_num_queries):
    _, raw = service_key_create(name="billing")
    with django_assert_num_queries(2):  # the lookup, then the first stamp
        service_key_authenticate(raw=raw)
    with django_assert_num_queries(1):  # the lookup only
        service_key_authenticate(raw=raw)
    ServiceKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    with django_assert_num_queries(2):
        service_key_authenticate(raw=raw)


def test_a_name_is_taken_by_one_live_key_and_freed_by_revoking():
    service_key_create(name="billing")
    with pytest.raises(ServiceKeyNameTaken):
        service_key_create(name="billing")
    service_key_revoke(name="billing")
    _, raw = service_key_create(name="billing")  # the replacement
    assert service_key_authenticate(raw=raw).name == "billing"


def command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("service_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_creates_prints_the_key_once_lists_and_revokes():
    out, _ = command("create", "worker")
    raw = out.strip()
    assert service_key_authenticate(raw=raw).name == "worker"
    listing, _ = command("list")
    assert "worker" in listing and raw[:12] in listing and raw not in listing
    assert "live" in listing
    out, _ = command("revoke", "worker")
    assert "Revoked" in out
    assert "revoked" in command("list")[0]
    with pytest.raises(InvalidServiceKey):
        service_key_authenticate(raw=raw)


@pytest.mark.parametrize(
    "args", [("revoke", "nobody"), ("create", ""), ("create", "x" * 65)]
)
def test_command_refuses_what_it_cannot_do(args):
    with pytest.raises(CommandError):
        command(*args)


def test_command_refuses_a_second_live_key_of_a_name():
    command("create", "worker")
    with pytest.raises(CommandError, match="exists"):
        command("create", "worker")


def test_admin_lists_keys_by_prefix_and_revokes_them(admin_client):
    key, raw = service_key_create(name="billing")
    page = admin_client.get("/admin/accounts/servicekey/").content.decode()
    assert "billing" in page and key.prefix in page
    assert raw not in page and key.digest not in page
    detail = admin_client.get(f"/admin/accounts/servicekey/{key.pk}/change/")
    assert raw not in detail.content.decode()
    assert key.digest not in detail.content.decode()
    response = admin_client.post(
        "/admin/accounts/servicekey/",
        {"action": "revoke", "_selected_action": [str(key.pk)]},
        follow=True,
    )
    assert "Revoked 1 service key(s)." in response.content.decode()
    with pytest.raises(InvalidServiceKey):
        service_key_authenticate(raw=raw)


def test_admin_cannot_add_a_key_it_could_not_show(admin_client):
    assert admin_client.get("/admin/accounts/servicekey/add/").status_code == 403


@pytest.mark.parametrize(
    ("scheme", "code"),
    [
        ("ApiKey", "not_authenticated"),
        ("apikey", "not_authenticated"),
        ("APIKEY", "not_authenticated"),
        ("Bearer", "invalid_token"),  # a key is no user token, whatever it is sent as
    ],
)
def test_a_key_on_the_user_api_is_refused_with_bearer(scheme, code):
    _, raw = service_key_create(name="billing")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {raw}")
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response["WWW-Authenticate"] == "Bearer"


def test_logs_never_hold_a_service_key():
    _, raw = service_key_create(name="billing")
    for text in [
        f"Authorization: ApiKey {raw}",
        f"authorization: apikey {raw}",
        f"headers={{'Authorization': 'ApiKey {raw}'}}",
        f"key {raw} in a sentence",
    ]:
        assert raw not in redact(text), text
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s", (raw,), None)
    RedactSecretsFilter().filter(record)
    assert raw not in record.getMessage()
