"""Channel-layer group names, built in one place.

Group names may only hold ASCII letters, digits, `-`, `_` and `.` and must be
shorter than 100 characters; session ids and room slugs are generated or
validated to fit.
"""


def session_group(sid: str) -> str:
    """Every socket of one login session: revocation closes them all."""
    return f"session.{sid}"


def user_group(user_id: int) -> str:
    """Every socket of one user: the private `user` stream."""
    return f"user.{user_id}"


def room_group(slug: str) -> str:
    """Every socket subscribed to one room."""
    return f"room.{slug}"
