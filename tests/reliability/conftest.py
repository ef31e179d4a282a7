"""Fixtures shared by the reliability tests."""

import pytest

from realtime.tests.presence import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each presence store in turn: memory, then Redis (a `services` test)."""
    if request.param == "redis":
        request.applymarker(pytest.mark.services)
    return request.param
