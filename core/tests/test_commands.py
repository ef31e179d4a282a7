"""Management commands refuse text no database can hold, with a message."""

import subprocess

import pytest
from django.core.management import CommandError, call_command

from tests.servers import PROJECT, PYTHON, server_env, sqlite_url

pytestmark = pytest.mark.django_db

# What Python makes of a byte the terminal's encoding cannot decode.
UNDECODABLE = "bad\udcffbyte"


@pytest.mark.parametrize(
    "args",
    [
        ["notify", UNDECODABLE, "hello"],
        ["notify", "alice", UNDECODABLE],
        ["mint_tokens", "--users", "1", "--prefix", UNDECODABLE],
        ["service_key", "create", UNDECODABLE],
        ["service_key", "revoke", UNDECODABLE],
    ],
    ids=["notify-user", "notify-text", "mint-prefix", "key-create", "key-revoke"],
)
def test_an_undecodable_argument_is_a_usage_error(args):
    with pytest.raises(CommandError, match="not valid Unicode text"):
        call_command(*args)


def test_from_a_terminal_it_is_a_message_not_a_traceback(tmp_path):
    # The raw byte, as a shell passes it: Python decodes it to a surrogate.
    # Refused while the arguments are read, before any database is opened.
    result = subprocess.run(
        [PYTHON, "manage.py", "notify", b"al\xffice", "x"],
        cwd=PROJECT,
        env=server_env(sqlite_url(tmp_path)),
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode != 0
    assert "not valid Unicode text" in stderr
    assert "Traceback" not in stderr
