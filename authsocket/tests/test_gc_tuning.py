"""authsocket.gc_tuning: applied when the ASGI application is built."""

import gc

import pytest

from authsocket.gc_tuning import tune_garbage_collector


@pytest.fixture
def pristine_gc():
    """CPython's defaults for the test, then the state found before it."""
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if frozen:
        gc.freeze()


def test_the_asgi_application_has_tuned_this_process():
    import authsocket.asgi  # noqa: F401  (the import applies the tuning)

    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() > 0


def test_start_up_objects_are_frozen_and_the_young_threshold_raised(
    settings, pristine_gc
):
    settings.AUTHSOCKET_GC_THRESHOLD = 12_345
    tune_garbage_collector()
    assert gc.get_threshold()[0] == 12_345
    assert gc.get_freeze_count() > 0


def test_zero_keeps_cpythons_defaults(settings, pristine_gc):
    settings.AUTHSOCKET_GC_THRESHOLD = 0
    tune_garbage_collector()
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
