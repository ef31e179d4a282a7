"""A service key's name is one line of `service_key list`: printable text,
not padded, 1 to 64 characters; refused by the model and by the command."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.models import ServiceKey
from accounts.service_keys import service_key_create
from tests.servers import run_manage, server_env, sqlite_url

pytestmark = pytest.mark.django_db

BAD_NAMES = [
    "billing\nrevoked 2026-01-01",  # a second, forged line in `list`
    "billing\tx",
    "\x1b[31mbilling",  # a terminal escape
    "billing\x00",
    "bill\u2028ing",  # a Unicode line separator
    " billing",
    "billing ",
    "   ",
    "",
    "x" * 65,
]


def command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("service_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_full_clean_refuses_a_name_that_is_not_one_printable_line(name):
    key = ServiceKey(name=name, prefix="ask_12345678", digest="0" * 64)
    with pytest.raises(ValidationError) as refused:
        key.full_clean()
    assert set(refused.value.message_dict) == {"name"}


@pytest.mark.parametrize(
    "name", ["billing", "Billing worker 2", "facturación", "x" * 64]
)
def test_full_clean_takes_printable_names_up_to_64_characters(name):
    ServiceKey(name=name, prefix="ask_12345678", digest="0" * 64).full_clean()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_creating_a_key_by_code_refuses_such_a_name_too(name):
    with pytest.raises(ValidationError):
        service_key_create(name=name)
    assert not ServiceKey.objects.exists()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_command_refuses_such_a_name_and_creates_nothing(name):
    with pytest.raises(CommandError, match="A name is 1 to 64 printable characters"):
        command("create", name)
    assert not ServiceKey.objects.exists()


def test_from_a_terminal_a_bad_name_is_one_line_and_an_exit_code(tmp_path):
    env = server_env(sqlite_url(tmp_path))
    result = run_manage(env, "service_key", "create", "billing\nforged line")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "A name is 1 to 64 printable characters" in result.stderr
    assert result.stdout == ""  # no key printed


def test_list_shows_a_name_stored_before_the_rule_on_one_line():
    """Rows written before names were checked still list one key per line,
    their control characters escaped."""
    ServiceKey.objects.create(
        name="old\nrevoked 2026-01-01\tforged", prefix="ask_12345678", digest="0" * 64
    )
    service_key_create(name="billing")
    listing, _ = command("list")
    lines = listing.splitlines()
    assert len(lines) == 2, listing
    assert lines[1].startswith("old\\nrevoked 2026-01-01\\tforged\t")
