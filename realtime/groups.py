"""Channel-layer group names, built in one place.

Group names may only hold ASCII letters, digits, `-`, `_` and `.` and must be
shorter than 100 characters. A stream's group is `<kind>.<key>` when that
fits (so `room.<slug>` and `user.<id>` keep their names), else the key is
hashed: `<kind>-<digest>` (kind names hold no `-`, so the two never meet).
"""

import hashlib
import re
from functools import lru_cache

_GROUP_SAFE = re.compile(r"[A-Za-z0-9._-]+")
MAX_GROUP_LENGTH = 99


@lru_cache(maxsize=4096)  # every subscribe and unsubscribe asks, a few streams are hot
def stream_group(kind: str, key: str) -> str:
    """Every socket subscribed to the stream `<kind>:<key>`."""
    group = f"{kind}.{key}"
    if len(group) <= MAX_GROUP_LENGTH and _GROUP_SAFE.fullmatch(key):
        return group
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}-{digest[:40]}"


def user_group(user_id: int) -> str:
    """Every socket of one user: the private `user` stream, and revocations.

    The only group a socket joins at the handshake. Revocation events name
    their sessions (`sids`) and each socket checks its own, so one join and
    one leave per socket serve both: with Redis, a round trip less each way.
    """
    return f"user.{user_id}"


@lru_cache(maxsize=4096)
def presence_group(group: str) -> str:
    """The sockets that asked for presence on the stream whose group is `group`.

    `_` never starts a kind name, so no stream's own group can take this name.
    """
    named = f"_presence.{group}"
    if len(named) <= MAX_GROUP_LENGTH:
        return named
    digest = hashlib.sha256(group.encode()).hexdigest()
    return f"_presence-{digest[:40]}"
