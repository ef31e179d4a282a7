"""Every Prometheus metric of authsocket, and the one-line calls that move them.

Imports nothing of ours, so any app may call it (accounts never imports
realtime). Figures live in this process's default registry: each daphne
process reports its own (docs/metrics.md). Label values are KINDS, reasons
and codes from bounded sets, never stream names, tokens, keys or users: a
value outside its set, or beyond a metric's cap, is counted as "other".
`AUTHSOCKET_METRICS=0` turns every call into a no-op (the bench's baseline).
"""

import re
import time

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

OTHER = "other"
_LABEL_VALUE = re.compile(r"[a-z0-9][a-z0-9_.]{0,39}")

# Seconds. Fan-out is normally milliseconds; revocation is bounded by 1 s.
_DELAY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_POLL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

OPEN_SOCKETS = Gauge(
    "authsocket_open_sockets", "WebSockets accepted and not yet closed."
)
HANDSHAKES = Counter(
    "authsocket_handshakes",
    "WebSocket handshakes by outcome, refusal reason and credential transport.",
    ["outcome", "reason", "transport"],
)
CLOSE_CODES = Counter(
    "authsocket_close_codes", "Close codes the server sent after accept.", ["code"]
)
SLOW_SOCKETS_DROPPED = Counter(
    "authsocket_slow_sockets_dropped",
    "WebSockets dropped because their client left more than "
    "AUTHSOCKET_MAX_SEND_BUFFER_BYTES of frames unread, or the most when the "
    "process's clients together left more than "
    "AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES.",
)
FRAMES_RECEIVED = Counter(
    "authsocket_frames_received",
    "Client frames that parsed as JSON objects, by type.",
    ["type"],
)
MESSAGES_PUBLISHED = Counter(
    "authsocket_messages_published",
    "Messages stored and handed to fan-out, by stream kind.",
    ["kind"],
)
MESSAGES_DELIVERED = Counter(
    "authsocket_messages_delivered",
    "Live messages sent to a socket, by stream kind.",
    ["kind"],
)
FANOUT_DELAY = Histogram(
    "authsocket_fanout_delay_seconds",
    "From a message's stored timestamp (ts_ms) to its send on one socket.",
    ["kind"],
    buckets=_DELAY_BUCKETS,
)
REVOCATIONS = Counter(
    "authsocket_revocations", "Sessions revoked by this process, by reason.", ["reason"]
)
REVOCATION_CLOSE_DELAY = Histogram(
    "authsocket_revocation_close_delay_seconds",
    "From a revocation's commit to the 4403 close of one of its sockets.",
    buckets=_DELAY_BUCKETS,
)
GUARD_POLL_DURATION = Histogram(
    "authsocket_revocation_poll_duration_seconds",
    "Duration of each successful revocation poll.",
    buckets=_POLL_BUCKETS,
)
GUARD_POLL_AGE = Gauge(
    "authsocket_revocation_poll_age_seconds",
    "Seconds since the last successful revocation poll started (-1: none yet).",
)
PRESENCE_JOINS = Counter(
    "authsocket_presence_joins", "presence.join events sent, by stream kind.", ["kind"]
)
PRESENCE_LEAVES = Counter(
    "authsocket_presence_leaves",
    "presence.leave events sent, by stream kind.",
    ["kind"],
)
CHANNEL_LAYER_ERRORS = Counter(
    "authsocket_channel_layer_errors",
    "Channel-layer calls that failed, by operation.",
    ["operation"],
)
DATABASE_ERRORS = Counter(
    "authsocket_database_errors",
    "Database calls that failed, by operation.",
    ["operation"],
)
THROTTLED = Counter(
    "authsocket_throttled", "Requests refused by a throttle, by its scope.", ["scope"]
)


class _Labels:
    """Children of one metric, one per label tuple; at most `cap` distinct tuples.

    A value that is not a short lowercase code, or that arrives after the cap
    is reached, becomes "other": no client input can grow the series count.
    """

    def __init__(self, metric, cap: int = 64) -> None:
        self.metric, self.cap, self.children = metric, cap, {}

    def __call__(self, *values):
        child = self.children.get(values)
        if child is None:
            child = self._add(values)
        return child

    def _add(self, values: tuple):
        if len(self.children) >= self.cap:  # not remembered: memory stays bounded
            return self.metric.labels(*(OTHER,) * len(values))
        clean = tuple(
            str(v) if _LABEL_VALUE.fullmatch(str(v)) else OTHER for v in values
        )
        child = self.children[values] = self.metric.labels(*clean)
        return child


_handshakes = _Labels(HANDSHAKES, cap=256)
_close_codes = _Labels(CLOSE_CODES)
_frames = _Labels(FRAMES_RECEIVED)
_frame_incs: dict[str, object] = {}  # frame type → its child's bound `inc`
_published = _Labels(MESSAGES_PUBLISHED, cap=32)
_delivered = _Labels(MESSAGES_DELIVERED, cap=32)
_fanout_delay = _Labels(FANOUT_DELAY, cap=32)
_revocations = _Labels(REVOCATIONS, cap=32)
_presence_joins = _Labels(PRESENCE_JOINS, cap=32)
_presence_leaves = _Labels(PRESENCE_LEAVES, cap=32)
_layer_errors = _Labels(CHANNEL_LAYER_ERRORS, cap=32)
_database_errors = _Labels(DATABASE_ERRORS, cap=32)
_throttled = _Labels(THROTTLED, cap=32)
_last_poll = [float("-inf")]  # monotonic start of the last successful poll

GUARD_POLL_AGE.set_function(
    lambda: -1.0 if _last_poll[0] == float("-inf") else time.monotonic() - _last_poll[0]
)


def enabled() -> bool:
    return settings.AUTHSOCKET_METRICS


def stream_kind(stream: str) -> str:
    """`room:lobby` → `room`, `user` → `user`: the label, never the name."""
    return stream.partition(":")[0]


# --- sockets -------------------------------------------------------------------


def socket_opened() -> None:
    if enabled():
        OPEN_SOCKETS.inc()


def socket_closed() -> None:
    if enabled():
        OPEN_SOCKETS.dec()


def slow_socket_dropped() -> None:
    if enabled():
        SLOW_SOCKETS_DROPPED.inc()


def handshake_accepted(transport: str) -> None:
    if enabled():
        _handshakes("accepted", "none", transport).inc()


def handshake_refused(reason: str, transport: str | None) -> None:
    if enabled():
        _handshakes("refused", reason, transport or "none").inc()


def close_code_sent(code: int) -> None:
    if enabled():
        _close_codes(code).inc()


def frame_received(frame_type: str, *, known) -> None:
    """`known`: the frame types the server handles; any other is "other".

    Every client frame passes here: the increment of each known type is
    looked up once and kept (`_frame_incs`, bounded by the frame types).
    """
    if enabled():
        label = frame_type if frame_type in known else OTHER
        inc = _frame_incs.get(label)
        if inc is None:
            inc = _frame_incs[label] = _frames(label).inc
        inc()


# --- streams -------------------------------------------------------------------


def message_published(stream: str) -> None:
    if enabled():
        _published(stream_kind(stream)).inc()


def message_delivered(stream: str, ts_ms: int | None) -> None:
    """One live message sent to one socket; `ts_ms` is when it was stored."""
    if not enabled():
        return
    kind = stream_kind(stream)
    _delivered(kind).inc()
    if ts_ms is not None:
        _fanout_delay(kind).observe(max(0.0, time.time() - ts_ms / 1000))


def presence_changed(stream: str, *, joined: bool, count: int = 1) -> None:
    """`count` times a user's first socket arrived on `stream` (`joined`), or
    his last one left it."""
    if enabled():
        labels = _presence_joins if joined else _presence_leaves
        labels(stream_kind(stream)).inc(count)


# --- sessions ------------------------------------------------------------------


def sessions_revoked(reason: str, count: int) -> None:
    if enabled() and count:
        _revocations(reason).inc(count)


def revocation_closed(revoked_at: float | None) -> None:
    """A socket closed 4403 because of a revocation committed at `revoked_at`."""
    if enabled() and revoked_at is not None:
        REVOCATION_CLOSE_DELAY.observe(max(0.0, time.time() - revoked_at))


def guard_polled(started: float) -> None:
    """A revocation poll that started at monotonic `started` succeeded now."""
    if enabled():
        GUARD_POLL_DURATION.observe(time.monotonic() - started)
        _last_poll[0] = started


def throttled(scope: str) -> None:
    if enabled():
        _throttled(scope).inc()


# --- failures ------------------------------------------------------------------


def channel_layer_error(operation: str) -> None:
    if enabled():
        _layer_errors(operation).inc()


def database_error(operation: str) -> None:
    if enabled():
        _database_errors(operation).inc()
