"""Service keys: the credentials other backends use on the server API.

A key is `ask_` plus 256 random bits. Only its SHA-256 digest is stored, in a
unique (indexed) column: a request costs one index lookup and a constant-time
comparison, never a slow password hash. A random 256-bit key needs no
stretching; a leaked table still hands out no usable key.

Every request reads the key's row, so a revocation is refused by every
process from the moment it commits (no cache to expire).
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import InvalidServiceKey, ServiceKeyNameTaken
from accounts.models import ServiceKey

KEY_PREFIX = "ask_"
KEY_RANDOM_BYTES = 32  # 256 bits
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8
MAX_KEY_LENGTH = 128  # anything longer is not ours: refused before hashing
LAST_USED_RESOLUTION = timedelta(minutes=1)


def key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def service_key_create(*, name: str) -> tuple[ServiceKey, str]:
    """A new live key named `name`; returns it with the raw key (shown once).

    Raises ValidationError for a name the model refuses (blank, too long, not
    one printable line): `save()` alone would store it.
    """
    raw = KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)
    key = ServiceKey(
        name=name, prefix=raw[:SHOWN_PREFIX_LENGTH], digest=key_digest(raw)
    )
    key.clean_fields()
    try:
        with transaction.atomic():
            key.save(force_insert=True)
    except IntegrityError as exc:
        raise ServiceKeyNameTaken(f"a live key named {name!r} exists") from exc
    return key, raw


def service_key_revoke(*, name: str) -> int:
    """Revoke the live key named `name`; returns how many were revoked (0 or 1)."""
    return service_keys_revoke(keys=ServiceKey.objects.filter(name=name))


def service_keys_revoke(*, keys) -> int:
    """Revoke every still-live key of a queryset (the admin's action)."""
    return keys.live().update(revoked_at=timezone.now())


def service_key_authenticate(*, raw: str) -> ServiceKey:
    """The live key `raw` names, or InvalidServiceKey."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > MAX_KEY_LENGTH:
        raise InvalidServiceKey()
    digest = key_digest(raw)
    key = ServiceKey.objects.live().filter(digest=digest).first()
    # The index finds the row by equality; the comparison that decides is
    # constant-time all the same.
    if key is None or not hmac.compare_digest(key.digest, digest):
        raise InvalidServiceKey()
    _touch(key)
    return key


def _touch(key: ServiceKey) -> None:
    """Record use at minute resolution: no write on every request."""
    now = timezone.now()
    if key.last_used_at and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    ServiceKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now
