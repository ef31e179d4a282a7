"""`AUTHSOCKET_ALLOWED_ORIGINS` entries match as docs/protocol.md §4.1 says.

They are Channels' origin patterns, not exact origins: a leading dot takes
the subdomains, a host without a scheme takes every scheme and port, and `*`
takes every origin. The doc warns about the last one; a change here must
change what §4.1 promises.
"""

import pytest

from realtime.origin import OriginCheck

CASES = [
    # (entry, origin, allowed)
    ("https://app.example.com", "https://app.example.com", True),
    ("https://app.example.com", "https://app.example.com:443", True),
    ("https://app.example.com", "https://app.example.com:8443", False),
    ("https://app.example.com", "http://app.example.com", False),
    ("https://app.example.com", "https://sub.app.example.com", False),
    ("https://.example.com", "https://a.example.com", True),
    ("https://.example.com", "https://example.com", True),
    ("https://.example.com", "http://a.example.com", False),
    ("example.com", "http://example.com:9000", True),
    ("example.com", "https://example.com", True),
    ("example.com", "https://evil.com", False),
    ("*", "https://evil.com", True),
]


@pytest.mark.parametrize(("entry", "origin", "allowed"), CASES)
def test_an_allowed_origins_entry_matches_as_the_protocol_doc_says(
    settings, entry, origin, allowed
):
    settings.AUTHSOCKET_ALLOWED_ORIGINS = [entry]
    assert OriginCheck(None).is_allowed(origin.encode()) is allowed


@pytest.mark.parametrize("origin", ["null", "", "localhost"])
def test_no_entry_admits_an_origin_without_a_host(settings, origin):
    settings.AUTHSOCKET_ALLOWED_ORIGINS = ["*"]
    assert OriginCheck(None).is_allowed(origin.encode()) is False
