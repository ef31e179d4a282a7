"""websockets' DEBUG log of the client's connections, without credentials.

At DEBUG, websockets logs every handshake header and every frame it sends
or receives. Those carry the access token (the `Authorization` header, the
token subprotocol, `?token=`), the ticket (`?ticket=`) and the new token of
each in-band `auth` frame. The socket hands websockets `websockets_logger`,
whose filter rewrites a record's text before any handler sees it. Below
DEBUG websockets formats none of this, so the filter costs nothing then.
"""

import logging
import re

from authsocket_client.protocol import TOKEN_SUBPROTOCOL_PREFIX

REDACTED = "[redacted]"

# What follows a marker of a credential, up to the end of its value.
_AFTER_MARKER = re.compile(
    r"(?P<marker>Bearer\s+|[?&](?:token|ticket)=|"
    + re.escape(TOKEN_SUBPROTOCOL_PREFIX)
    + r'|"token"\s*:\s*")[^\s&",]+'
)
# A JWT anywhere else, whole or in part (websockets cuts long frames short).
_JWT = re.compile(r"eyJ[\w-]*(?:\.[\w-]*){0,2}")


def redact(text: str) -> str:
    """`text` with every credential the client sends replaced by `REDACTED`."""
    return _JWT.sub(REDACTED, _AFTER_MARKER.sub(rf"\g<marker>{REDACTED}", text))


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = redact(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


websockets_logger = logging.getLogger("authsocket_client.websockets")
websockets_logger.addFilter(RedactCredentials())
