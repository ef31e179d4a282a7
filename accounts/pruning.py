"""Delete the credentials nothing can use any more, so their tables stay bounded.

Every refresh stores a refresh token and every ticket a row: a tab left open
adds one of each every few minutes. What is kept and why:

* a ticket past its expiry opens nothing, so it goes at once;
* the refresh tokens of a LIVE session are all kept, rotated ones included:
  a rotated token used again is how a theft is recognized (`token_reused`),
  for as long as the session lives, and a session lives at most
  `AUTHSOCKET_REFRESH_TTL`, so they are bounded by it;
* the refresh tokens of a session that ended (revoked, or past its lifetime)
  and the revocation log's rows are kept `AUTHSOCKET_CREDENTIAL_RETENTION`,
  so a late refresh is still told why (`revoked`, `session_expired`), then go;
* the sessions themselves stay, one row per login, for the admin's audit
  (deleting one would revoke it again: accounts/receivers.py).

Run hourly by `manage.py prune_credentials` (deploy/systemd).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import RefreshToken, SessionRevocation, WebSocketTicket

BATCH = 5000  # rows per DELETE: short transactions, no long lock on SQLite


def credentials_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete what can no longer be used; rows deleted, by what they were."""
    now = now or timezone.now()
    ended_before = now - timedelta(seconds=settings.AUTHSOCKET_CREDENTIAL_RETENTION)
    ended = Q(session__revoked_at__lt=ended_before) | Q(
        session__expires_at__lt=ended_before
    )
    return {
        "tickets": _delete_in_batches(
            WebSocketTicket.objects.filter(expires_at__lt=now)
        ),
        "refresh tokens": _delete_in_batches(RefreshToken.objects.filter(ended)),
        "revocation log rows": _delete_in_batches(
            SessionRevocation.objects.filter(revoked_at__lt=ended_before)
        ),
    }


def _delete_in_batches(rows: QuerySet) -> int:
    deleted = 0
    while batch := list(rows.values_list("pk", flat=True)[:BATCH]):
        rows.model.objects.filter(pk__in=batch).delete()
        deleted += len(batch)
    return deleted
