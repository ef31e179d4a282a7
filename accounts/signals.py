"""The signals accounts sends, for higher apps to act on without being imported.

`sessions_revoked` is sent once per revocation, after the transaction commits,
with `revoked`, a list of `(sid, user_id)` pairs, and `revoked_at`, the time the
log rows carry. Receivers run in the committing thread and must not raise.
"""

from django.dispatch import Signal

sessions_revoked = Signal()
