"""Logging that can never leak a credential.

Every handler of the project carries `RedactSecretsFilter`: whatever a message
or traceback contains (a URL with `?token=`, a header, a JSON body), JWTs,
bearer values, service keys and credential-named fields are replaced before
it is written.
"""

import json
import logging
import re

REDACTED = "[redacted]"

_SECRET_KEYS = "token|ticket|refresh|access|password|secret|cookie"
_URL_SAFE = "[A-Za-z0-9_-]"

_PATTERNS = [
    # Anything shaped like a JWT (also inside `authsocket.token.<jwt>`).
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)((?:bearer|apikey)\s+)[^\s,;\"']+"), r"\1" + REDACTED),
    # A service key anywhere (`ask_` + 43 URL-safe characters).
    (re.compile(r"\bask_[A-Za-z0-9_-]{20,}"), REDACTED),
    # An opaque credential wherever it stands, named or not (a refresh token
    # or a ticket in a URL's path, in a Host header): 40 or more URL-safe
    # characters mixing upper and lower case. Secrets are 43 (32 random
    # bytes); a session id (32) and hex digests (one case) stay readable.
    (
        re.compile(
            rf"(?<!{_URL_SAFE})(?={_URL_SAFE}*[A-Z])(?={_URL_SAFE}*[a-z])"
            rf"{_URL_SAFE}{{40,}}(?!{_URL_SAFE})"
        ),
        REDACTED,
    ),
    # key=value in query strings and form bodies; any key that names a
    # credential (access_token, refresh_token, client_secret, new_password…).
    (re.compile(rf"(?i)\b(\w*(?:{_SECRET_KEYS}))=[^&\s\"']*"), r"\1=" + REDACTED),
    # "key": "value" in JSON bodies.
    (
        re.compile(rf"(?i)(\"\w*(?:{_SECRET_KEYS})\"\s*:\s*)\"[^\"]*\""),
        r'\1"' + REDACTED + '"',
    ),
]


def redact(text: str) -> str:
    """Return `text` with every credential-looking value replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Rewrite the record's final message (and traceback) in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class OneLineFilter(logging.Filter):
    """A record in one line, at WARNING: for a client's error, not the server's.

    Django logs each suspicious request (`django.security.*`: a form of more
    than 1,000 fields, a body over its size limit, a lookup the admin does
    not allow) at ERROR with its traceback: forty lines for a request anyone
    can send to the admin login, answered 400. The message names the problem.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (AUTHSOCKET_LOG_FORMAT=json)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text or record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(
                record.exc_info
            )
        return json.dumps(entry)


def redact_access_log_request(request: str) -> str:
    """An access-log request line without its query string.

    Like nginx's `$uri` (docs/protocol.md §6: the path only): whatever a client put
    after `?` (a `?token=`, a `?ticket=`, anything under another name) never
    reaches the log.
    """
    return redact(request.partition("?")[0])


def redact_daphne_access_log() -> None:
    """Make daphne's access log drop query strings (idempotent).

    daphne writes that log straight to a stream, past every logging filter,
    and its HTTP lines carry the whole URI: a plain GET of `/ws/?token=…`
    (a proxy that dropped the Upgrade header) would print the token.
    """
    from daphne.access import AccessLogGenerator

    original = AccessLogGenerator.write_entry
    if getattr(original, "redacts_queries", False):
        return

    def write_entry(self, host, date, request, *args, **kwargs):
        return original(
            self, host, date, redact_access_log_request(request), *args, **kwargs
        )

    write_entry.redacts_queries = True
    AccessLogGenerator.write_entry = write_entry
