"""Best-effort `group_send`: the one place a channel-layer failure is swallowed.

Every caller has a slower path that needs no layer: a published message is
stored for replay, each process's poll closes revoked sockets, a socket keeps
a stream until it resubscribes. So a failure is one warning, and we go on.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from core import metrics

logger = logging.getLogger(__name__)


def group_send(group: str, event: dict, *, fallback: str) -> bool:
    """Send from sync code; False, logged with `fallback`, when it failed."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception as exc:
        _warn(exc, fallback)
        return False
    return True


async def agroup_send(group: str, event: dict, *, fallback: str) -> bool:
    """`group_send` from async code, on the caller's event loop."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        await layer.group_send(group, event)
    except Exception as exc:
        _warn(exc, fallback)
        return False
    return True


def _warn(exc: Exception, fallback: str) -> None:
    metrics.channel_layer_error("group_send")
    logger.warning("channel layer unreachable (%s); %s", type(exc).__name__, fallback)
