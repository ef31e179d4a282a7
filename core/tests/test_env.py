"""core.env: the development key file that cannot be used is named, not a traceback."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import development_secret_key


def test_the_development_key_is_made_once_and_read_after(tmp_path):
    path = tmp_path / ".dev-secret-key"
    key = development_secret_key(path)
    assert len(key) > 50
    assert development_secret_key(path) == key


def a_directory(tmp_path):
    path = tmp_path / ".dev-secret-key"
    path.mkdir()
    return path


def not_text(tmp_path):
    path = tmp_path / ".dev-secret-key"
    path.write_bytes(b"\xff\xfe not text")
    return path


def in_a_missing_folder(tmp_path):
    return tmp_path / "nowhere" / ".dev-secret-key"


@pytest.mark.parametrize("where", [a_directory, not_text, in_a_missing_folder])
def test_a_key_file_that_cannot_be_used_is_named(tmp_path, where):
    path = where(tmp_path)
    with pytest.raises(ImproperlyConfigured, match="development key file .* cannot be"):
        development_secret_key(path)
