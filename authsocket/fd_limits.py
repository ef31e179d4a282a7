"""The open-file limit of a server process: every WebSocket is a descriptor.

A login shell's soft RLIMIT_NOFILE is often 1024, so a daphne started from it
stops accepting after about a thousand sockets ("Too many open files"), while
the hard limit is usually far higher and any process may raise its own soft
limit up to it. `authsocket.serve` does so at start, logs the limit in
effect once and warns when it cannot hold the sockets the operator expects
(docs/deploy.md, "File descriptors").
"""

import logging
import resource
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("authsocket.serve")

# Descriptors a process holds besides its WebSockets: the listening socket,
# database and Redis connections, log files, the event loop's own.
RESERVED_DESCRIPTORS = 64
# Linux's ceiling when the hard limit says "unlimited" (setrlimit refuses more).
NR_OPEN = Path("/proc/sys/fs/nr_open")
NR_OPEN_DEFAULT = 1_048_576


@dataclass(frozen=True)
class NofileLimit:
    """The soft and hard limits in effect, and the soft limit found at start."""

    soft: int
    hard: int
    before: int

    @property
    def sockets(self) -> int:
        """About how many WebSockets the soft limit leaves room for."""
        return max(0, self.soft - RESERVED_DESCRIPTORS)


def _ceiling(hard: int) -> int:
    if hard != resource.RLIM_INFINITY:
        return hard
    try:
        return int(NR_OPEN.read_text())
    except (OSError, ValueError):
        return NR_OPEN_DEFAULT


def nofile_raise() -> NofileLimit:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns what is in effect.

    Never lowers it, and never fails: a limit that cannot be raised is kept
    (and reported by `nofile_report`).
    """
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _ceiling(hard)
    if before != resource.RLIM_INFINITY and before < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            logger.warning("could not raise the open-file limit from %d", before)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return NofileLimit(soft=soft, hard=hard, before=before)


def nofile_report(limit: NofileLimit, *, expected: int) -> None:
    """Log the limit once; warn, with the fix, when it is low for `expected`."""
    logger.info(
        "open-file limit %d (hard %d, %d at start): room for about %d WebSockets",
        limit.soft,
        limit.hard,
        limit.before,
        limit.sockets,
    )
    if limit.sockets < expected:
        logger.warning(
            "open-file limit %d leaves room for only about %d WebSockets, fewer "
            "than AUTHSOCKET_EXPECTED_SOCKETS=%d: raise the hard limit "
            "(LimitNOFILE= in the systemd unit, `ulimit -Hn` in the shell) and "
            "restart; see docs/deploy.md, 'File descriptors'",
            limit.soft,
            limit.sockets,
            expected,
        )


def nofile_prepare(*, expected: int) -> NofileLimit:
    """Raise the limit, then report it: what `authsocket.serve` runs at start."""
    limit = nofile_raise()
    nofile_report(limit, expected=expected)
    return limit
