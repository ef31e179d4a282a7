"""authsocket's settings plus the shared-document example (`make run-example`)."""

from authsocket.settings import *  # noqa: F403
from authsocket.settings import BASE_DIR, DATABASES, INSTALLED_APPS
from core.env import env_str

INSTALLED_APPS = [*INSTALLED_APPS, "examples.shareddoc"]
ROOT_URLCONF = "examples.urls"
ASGI_APPLICATION = "examples.asgi.application"

# Its own database file unless DATABASE_URL says otherwise: trying the example
# never adds tables to the product's development database.
if not env_str("DATABASE_URL"):
    DATABASES["default"]["NAME"] = BASE_DIR / "examples" / "db.sqlite3"
