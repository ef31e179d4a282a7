"""`ThrottledLog`: one line per window for a failure that meets many sockets.

On real servers with a real outage: tests/reliability/test_database_outage_frames.py.
Here the window's arithmetic, on a clock the test moves.
"""

import logging

from core.throttled_log import ThrottledLog


def test_repeats_within_the_window_are_counted_into_the_next_line(caplog):
    now = [1000.0]
    log = ThrottledLog(logging.getLogger("outage"), every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="outage"):
        log.warning("down (%s)", "OperationalError")
        now[0] += 9.9
        log.warning("down (%s)", "OperationalError")
        log.warning("down (%s)", "InterfaceError")
        now[0] += 0.1
        log.warning("down (%s)", "OperationalError")
        now[0] += 10.0
        log.warning("down (%s)", "OperationalError")
    assert [record.getMessage() for record in caplog.records] == [
        "down (OperationalError)",
        "down (OperationalError) (and 2 more since the last such line)",
        "down (OperationalError)",
    ]
    assert all(record.exc_info is None for record in caplog.records)
