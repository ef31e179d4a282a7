"""Channel-layer group names, built in one place.

Group names may only hold ASCII letters, digits, `-`, `_` and `.` and must be
shorter than 100 characters; session ids and room slugs are generated or
validated to fit.
"""


def user_group(user_id: int) -> str:
    """Every socket of one user: the private `user` stream, and revocations.

    The only group a socket joins at the handshake. Revocation events name
    their sessions (`sids`) and each socket checks its own, so one join and
    one leave per socket serve both: with Redis, a round trip less each way.
    """
    return f"user.{user_id}"


def room_group(slug: str) -> str:
    """Every socket subscribed to one room."""
    return f"room.{slug}"
