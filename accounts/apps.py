from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import (  # noqa: F401  (registers receivers and the schema)
            receivers,
            schema,
        )
        from accounts.keys import keyring

        # Read the signing keys now: a key file that is missing, not PEM or
        # of the wrong type for AUTHSOCKET_JWT_ALGORITHM stops the process at
        # start-up, not at the first login (a 500 for every user).
        keyring()
