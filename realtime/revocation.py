"""Revoked sessions → this process's guard and every process's sockets.

accounts marks the rows and, after commit, sends `sessions_revoked`. Here the
guard refuses those sessions at once, and one `sessions.revoked` event per user
tells the sockets on every process (the consumer closes those it names, 4403).
If that message is lost, each process's guard poll reads the revocation log
and `sockets_close` closes this process's sockets of it: both paths end here.
"""

import logging
import time

from realtime.broadcast import group_send
from realtime.connections import registry
from realtime.groups import user_group
from realtime.protocol import CloseCode, SessionEvent
from realtime.session_guard import guard

logger = logging.getLogger(__name__)


def sessions_revoked_notify(sender, *, revoked: list[tuple[str, int]], **kwargs):
    """Receiver of `accounts.signals.sessions_revoked`: `(sid, user_id)` pairs."""
    guard.mark_revoked([sid for sid, _ in revoked])
    committed = time.time()  # sent along for the close-delay histogram
    sids_by_user: dict[int, list[str]] = {}
    for sid, user_id in revoked:
        sids_by_user.setdefault(user_id, []).append(sid)
    for user_id, sids in sids_by_user.items():
        event = {
            "type": SessionEvent.REVOKED.value,
            "sids": sids,
            "revoked_at": committed,
        }
        if not group_send(
            user_group(user_id), event, fallback="revocation left to the poll"
        ):
            return  # the layer is down: no point trying the next user


async def sockets_close(sids: list[str]) -> None:
    """Guard listener: close this process's sockets of these sessions (4403)."""
    for sid in sids:
        for socket in registry.of_session(sid):
            try:
                await socket.close_for(CloseCode.REVOKED)
            except Exception:  # one broken socket must not spare the others
                logger.exception("closing a revoked socket failed")
