"""Handshakes autobahn refuses by itself, answered as docs/protocol.md §4.1 says.

Under daphne, autobahn reads a WebSocket handshake before any ASGI code runs
and refuses some on its own: 400, with its reason as the status line. Plain
``daphne`` serves the project as well as ``python -m authsocket.serve`` (§6),
so daphne's protocol class is changed for both, in the process that runs it:

* the status line is the status's own phrase: autobahn's reason can quote the
  request (a repeated ``authsocket.token.<jwt>`` subprotocol: "duplicate
  protocol …"), and a token must not come back in a line proxies may log;
* more than one token subprotocol is a refused credential: 403 like every
  other refusal (autobahn said 400 when the two were the same token), and
  counted as one in /metrics, as the application counts two different ones;
* the reason is logged (every refusal's is), up to where it quotes the request;
* what daphne or autobahn would trip on only once the application had run is
  refused before it runs, 400: a ``Sec-WebSocket-Protocol`` that is not ASCII
  (daphne's decoding raised: 500 and a traceback) and an extension offer
  autobahn cannot parse (it refused the handshake after the application had
  accepted it, whose ``welcome`` then raised on the closed connection).
"""

import logging
import re
from http import HTTPStatus

from autobahn.websocket import ConnectionDeny
from autobahn.websocket.compress import PERMESSAGE_COMPRESSION_EXTENSION

from core import metrics  # reads settings only when it counts
from core.daphne_fixes import daphne_class_to_fix, fixed
from realtime.protocol import TOKEN_SUBPROTOCOL_PREFIX  # plain names, no Django

logger = logging.getLogger(__name__)


def daphne_handshake_refusals() -> None:
    """Fix daphne's WebSocket protocol (core/daphne_fixes.py)."""
    protocol = daphne_class_to_fix(
        "daphne.ws_protocol", "WebSocketProtocol", "failHandshake"
    )
    if protocol is None:
        return
    fail, respond = protocol.failHandshake, protocol.sendHttpErrorResponse
    connect = protocol.onConnect

    def onConnect(self, request):
        problem = unusable_handshake(request.headers, request.extensions)
        if problem is not None:
            # autobahn answers it with failHandshake (below): logged, 400.
            raise ConnectionDeny(int(HTTPStatus.BAD_REQUEST), problem)
        return connect(self, request)

    @fixed
    def failHandshake(self, reason, code=400, responseHeaders=None):
        # 403 comes from the application, which has logged its reason already.
        if code != HTTPStatus.FORBIDDEN:
            if token_subprotocols(self) > 1:
                code = HTTPStatus.FORBIDDEN
                # The application never sees it: counted as it counts two tokens.
                metrics.handshake_refused("bad_credential", None)
            logger.info(
                "websocket refused by the transport (%d): %s", code, _head(reason)
            )
        return fail(self, reason, code, responseHeaders)

    def sendHttpErrorResponse(self, code, reason, responseHeaders=None):
        return respond(self, code, _phrase(code), responseHeaders)

    protocol.failHandshake = failHandshake
    protocol.sendHttpErrorResponse = sendHttpErrorResponse
    protocol.onConnect = onConnect


def unusable_handshake(headers: dict, extensions: list) -> str | None:
    """Why a handshake cannot be served although autobahn let it through, or None.

    `headers` as autobahn read them (latin-1 text), `extensions` the
    (name, parameters) offers it parsed from them.
    """
    if not headers.get("sec-websocket-protocol", "").isascii():
        return "Sec-WebSocket-Protocol is not ASCII"
    for name, parameters in extensions:
        compression = PERMESSAGE_COMPRESSION_EXTENSION.get(name)
        if compression is None:
            continue  # autobahn ignores an extension it does not know
        try:
            compression["Offer"].parse(parameters)
        except Exception:  # autobahn's parsers raise plain Exception
            return f"unusable {name} offer"
    return None


def token_subprotocols(handshake) -> int:
    """How many `authsocket.token.<jwt>` subprotocols a handshake offers."""
    headers = getattr(handshake, "http_headers", None) or {}
    offered = headers.get("sec-websocket-protocol", "").split(",")
    return sum(p.strip().startswith(TOKEN_SUBPROTOCOL_PREFIX) for p in offered)


def _head(reason: str) -> str:
    """autobahn's reason up to its first quote or colon: after it, the request."""
    return re.split("[\"':]", reason, maxsplit=1)[0].strip()


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"
