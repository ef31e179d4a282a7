"""Run daphne with authsocket's limits and a graceful SIGTERM (docs/protocol.md §4.3, §6).

    python -m authsocket.serve [daphne options] authsocket.asgi:application

Takes exactly daphne's command line. Differences from plain ``daphne``:

* the WebSocket message and frame size limits default to twice
  ``AUTHSOCKET_MAX_MESSAGE_BYTES``: a message a little over the limit still
  reaches the consumer (which answers 4413), a huge one is cut by autobahn at
  its frame header, before it is buffered, with a 4413 close frame too
  (``ContractWebSocketProtocol``; autobahn would send 1009, or drop the TCP
  connection with its default ``failByDrop``);
* a handshake autobahn refuses itself gets a status line that never quotes
  what the client sent, and 403 for more than one token subprotocol, whatever
  the application (``realtime.handshake_refusals``, also applied by
  authsocket/asgi.py under plain ``daphne``);
* Twisted does not parse POST bodies (``RawBodyRequest``): daphne never
  reads what it parses, and a multipart body it could not parse was an
  empty 400 of Twisted's own instead of the application's JSON answer
  (plain daphne serving authsocket.asgi now does the same:
  ``authsocket.daphne_requests``);
* autobahn judges no Origin: every handshake reaches the application's check
  (``realtime.origin.OriginCheck``: 403 and a logged reason), where autobahn
  would answer 400, unlogged, to ``Origin: null`` and to an Origin without a
  host (``leave_origins_to_the_application``);
* the access log never shows query strings (daphne logs them for HTTP;
  ``authsocket.logging.redact_daphne_access_log``), and is JSON lines with
  ``AUTHSOCKET_LOG_FORMAT=json``;
* the soft open-file limit is raised to the hard limit, logged once, and a
  warning names the fix when it is below ``AUTHSOCKET_EXPECTED_SOCKETS``
  (every WebSocket is a file descriptor; ``authsocket.fd_limits``);
* SIGTERM and SIGINT drain the process instead of killing it: stop listening
  (the proxy sends new connections to the other upstreams), close every live
  WebSocket with 4503 through the ASGI ``websocket.close`` message, wait up to
  ``AUTHSOCKET_SHUTDOWN_GRACE`` seconds (default 5) for the application
  instances to finish, then stop the reactor; the registry of live sockets
  says its goodbye as the reactor stops (presence leaves go out at once,
  bounded: ``realtime/presence/shutdown.py``, as under plain daphne). A second
  signal stops at once.

Plain daphne cannot send 4503 by itself: on SIGTERM Twisted calls
``reactor.stop()``, daphne's "before shutdown" trigger cancels every
application instance, and the reactor then drops the TCP connections, so
clients see 1006. See docs/deploy.md, "Graceful shutdown".
"""

import asyncio
import json
import logging
import signal
import sys
import time
from functools import partial

# daphne.server installs the asyncio reactor; it must be imported before
# anything else touches twisted.internet.reactor.
from daphne.access import AccessLogGenerator  # isort:skip
from daphne.cli import CommandLineInterface  # isort:skip
from daphne.server import Server  # isort:skip
from daphne.http_protocol import HTTPFactory, WebRequest  # isort:skip
from daphne.ws_protocol import WebSocketProtocol  # isort:skip
from twisted.internet import reactor  # isort:skip

import autobahn.websocket.protocol as autobahn_protocol  # isort:skip

from django.core.exceptions import ImproperlyConfigured  # isort:skip

from core.env import (  # isort:skip  (os.environ only)
    env_log_format,
    env_max_message_bytes,
    env_seconds,
)
from authsocket.fd_limits import nofile_prepare  # isort:skip  (stdlib only)
from authsocket.logging import (  # isort:skip  (no Django imports)
    redact_access_log_request,
    redact_daphne_access_log,
)
from authsocket.daphne_requests import daphne_request_fixes  # isort:skip  (stdlib only)
from authsocket.eager_writes import write_at_once  # isort:skip  (stdlib only)
from realtime.outgoing_frames import guard_outgoing_frames  # isort:skip  (no models)
from realtime.handshake_refusals import (  # isort:skip  (no Django imports)
    daphne_handshake_refusals,
)
from realtime.protocol import CloseCode  # isort:skip  (plain enums, no Django)

logger = logging.getLogger("authsocket.serve")

# int(): autobahn refuses anything but a plain int as a close code.
SHUTDOWN_CLOSE_CODE = int(CloseCode.SHUTTING_DOWN)
MESSAGE_TOO_BIG_CLOSE_CODE = int(CloseCode.MESSAGE_TOO_BIG)
DEFAULT_SHUTDOWN_GRACE = 5.0


def _from_env(read):
    """What `read()` returns; a bad environment value (ImproperlyConfigured,
    from core.env or the settings) stops start-up with one line naming it."""
    try:
        return read()
    except ImproperlyConfigured as exc:
        raise SystemExit(str(exc)) from None


def transport_message_limit() -> int:
    """The daphne/autobahn payload limit matching AUTHSOCKET_MAX_MESSAGE_BYTES."""
    return 2 * _from_env(env_max_message_bytes)


class ContractWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol, closing 4413 as the wire contract says.

    A message over the transport limit closes 4413. autobahn calls
    ``_max_message_size_exceeded`` when a message (or a frame) grows past
    ``maxMessagePayloadSize`` / ``maxFramePayloadSize``, at the frame header,
    before the payload is buffered; it would fail the connection with 1009.
    Every message over ``AUTHSOCKET_MAX_MESSAGE_BYTES`` closes 4413, whoever
    noticed it, and the close-code metric counts it either way (the
    application never hears of this cut). Handshakes autobahn refuses itself:
    ``realtime.handshake_refusals``.
    """

    def _max_message_size_exceeded(self, msg_size, max_msg_size, reason):
        # Imported here: this module loads before Django is configured.
        from core import metrics

        if self.state == self.STATE_OPEN:  # else no close frame goes out
            metrics.close_code_sent(MESSAGE_TOO_BIG_CLOSE_CODE)
        self._fail_connection(MESSAGE_TOO_BIG_CLOSE_CODE, reason)


class RawBodyRequest(WebRequest):
    """daphne's HTTP request, without Twisted's parsing of POST bodies.

    Twisted parses urlencoded and multipart bodies into ``request.args``,
    which daphne never reads (the application gets the raw body), and
    answers a multipart body it cannot parse with an empty 400 of its own,
    before the application could answer JSON.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parsePOSTFormSubmission = False


class RawBodyHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = RawBodyRequest
        return protocol


def _origin_left_to_the_application(url):
    """autobahn's Origin parser, replaced: to autobahn every Origin is "null"."""
    return "null"


def leave_origins_to_the_application() -> None:
    """autobahn lets every Origin through; ``realtime.origin.OriginCheck`` judges.

    autobahn answers 400, before the application runs and without a log line,
    an Origin without a host (``localhost``, an empty value) and ``null``
    unless ``allowNullOrigin`` is set. Read as "null" and with
    ``allowNullOrigin`` (``GracefulServer._on_startup``), every Origin reaches
    the application's check: 403 and a logged reason.
    """
    if not hasattr(autobahn_protocol, "_url_to_origin"):
        logger.warning(
            "autobahn has no _url_to_origin: an Origin it cannot parse is "
            "refused 400 before the application's Origin check"
        )
    autobahn_protocol._url_to_origin = _origin_left_to_the_application


class JsonAccessLog(AccessLogGenerator):
    """daphne's access log as JSON lines (AUTHSOCKET_LOG_FORMAT=json).

    The same entries as daphne's NCSA lines, with the query string blanked
    like every other access log of the project (docs/protocol.md §6).
    """

    def write_entry(
        self, host, date, request, status=None, length=None, ident=None, user=None
    ):
        request = redact_access_log_request(request)
        entry = {
            # The format of authsocket.logging.JsonFormatter's "time".
            "time": date.strftime("%Y-%m-%d %H:%M:%S")
            + f",{date.microsecond // 1000:03d}",
            "level": "INFO",
            "logger": "daphne.access",
            "message": f'"{request}" {status or "-"} {length or "-"}',
            "client": host,
            "request": request,
            "status": status,
            "bytes": length,
        }
        self.stream.write(json.dumps(entry) + "\n")


class _Instance:
    """One live ASGI application instance, as seen by the drain registry."""

    __slots__ = ("accepted", "closed", "scope_type", "send")

    def __init__(self, scope_type, send):
        self.scope_type = scope_type
        self.send = send
        self.accepted = False
        self.closed = False


class DrainRegistry:
    """ASGI middleware that knows every live instance and can close sockets.

    Closing goes through the same ``send`` the application uses, so daphne
    sends a real close frame; the client's answer comes back to the
    application as an ordinary ``websocket.disconnect`` and consumers clean up
    (group_discard, timers) exactly as on any other close.
    """

    def __init__(self, application):
        self.application = application
        self.instances: set[_Instance] = set()
        self._idle = None

    async def __call__(self, scope, receive, send):
        instance = _Instance(scope["type"], send)
        self.instances.add(instance)
        try:
            await self.application(scope, receive, partial(self._send, instance))
        finally:
            self.instances.discard(instance)
            if not self.instances and self._idle is not None:
                self._idle.set()

    async def _send(self, instance, message):
        if instance.closed:
            # We closed this socket for shutdown: autobahn would raise
            # Disconnected on a send in the CLOSING state, so drop it here.
            return
        kind = message["type"]
        if kind == "websocket.accept":
            instance.accepted = True
        elif kind == "websocket.close":
            instance.closed = True
        await instance.send(message)

    async def close_websockets(self, code: int = SHUTDOWN_CLOSE_CODE) -> int:
        """Close every open or opening WebSocket; returns how many were closed."""
        closed = 0
        for instance in list(self.instances):
            if instance.scope_type != "websocket" or instance.closed:
                continue
            instance.closed = True
            # Before accept, a close is a refusal (HTTP 403): the client's
            # reconnect lands on another process.
            message = {"type": "websocket.close"}
            if instance.accepted:
                message["code"] = code
            try:
                await instance.send(message)
            except Exception:  # the peer vanished meanwhile; nothing to tell it
                logger.debug("close on shutdown failed", exc_info=True)
            closed += 1
        return closed

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no instance is live, at most ``timeout`` seconds."""
        if not self.instances:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._idle = None


class GracefulServer(Server):
    """daphne's Server with a draining signal handler instead of Twisted's."""

    def __init__(self, *args, registry: DrainRegistry, grace: float, **kwargs):
        # Twisted's own handlers would call reactor.stop() straight away.
        kwargs["signal_handlers"] = False
        super().__init__(*args, **kwargs)
        self.registry = registry
        self.grace = grace
        self.ports = []
        self.draining = False
        self.drain_task: asyncio.Future | None = None
        self.stopping = False

    def run(self):
        # Django is set up by now (the application is loaded), so are its logs.
        from django.conf import settings

        nofile_prepare(expected=settings.AUTHSOCKET_EXPECTED_SOCKETS)
        reactor.callWhenRunning(self._on_startup)
        super().run()

    def _on_startup(self):
        # Runs before the reactor accepts its first connection.
        # autobahn drops the TCP connection on a protocol violation
        # (failByDrop): the client then sees 1006. Send a close frame instead,
        # so it learns why. Every setProtocolOptions call also resets
        # allowNullOrigin to False unless it is given: give it.
        self.ws_factory.setProtocolOptions(failByDrop=False, allowNullOrigin=True)
        leave_origins_to_the_application()
        # A message over --websocket-max-message-size closes 4413, not 1009.
        self.ws_factory.protocol = ContractWebSocketProtocol
        # daphne.Server.run made its factory and listens with it already: the
        # same object, our subclass, so each connection gets RawBodyRequest.
        self.http_factory.__class__ = RawBodyHTTPFactory
        self._install_signal_handlers()

    def listen_success(self, port):
        self.ports.append(port)
        super().listen_success(port)

    def _install_signal_handlers(self):
        loop = asyncio.get_event_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum):
        if self.draining:
            logger.warning("Second %s: stopping now", signal.Signals(signum).name)
            self._stop_once()
            return
        self.draining = True
        # Kept: the loop holds only a weak reference to a task.
        self.drain_task = asyncio.ensure_future(self.drain(signal.Signals(signum).name))

    async def drain(self, reason: str = "shutdown"):
        """Stop listening, close sockets with 4503, wait, stop the reactor."""
        started = time.monotonic()
        try:
            for port in self.ports:
                port.stopListening()
            closed = await self.registry.close_websockets(SHUTDOWN_CLOSE_CODE)
            logger.info(
                "%s: stopped listening, closing %d WebSocket(s) with %d",
                reason,
                closed,
                SHUTDOWN_CLOSE_CODE,
            )
            if not await self.registry.wait_idle(self.grace):
                logger.warning(
                    "%d application instance(s) still running after %.1fs; cancelling",
                    len(self.registry.instances),
                    self.grace,
                )
            logger.info("Drained in %.2fs", time.monotonic() - started)
        finally:
            # Whatever went wrong above, a signalled process must still exit.
            self._stop_once()

    def _stop_once(self):
        """Stop the reactor, unless a second signal did already.

        Two signals often come together: `make run` passes a SIGTERM on to
        its child, which a kill of the process group has signalled already.
        The drain the first one began then ends after the reactor was told
        to stop, and Twisted refuses a second stop with an exception.
        """
        if not self.stopping:
            self.stopping = True
            self.stop()


class GracefulCommandLineInterface(CommandLineInterface):
    """daphne's CLI, wired to GracefulServer and authsocket's size limits."""

    description = "authsocket's daphne: HTTP/WebSocket server with graceful drain"

    def __init__(self):
        super().__init__()
        self.registry = None

    def load_asgi_app(self, asgi_app_path):
        # Loading the application reads the settings: a bad environment value
        # stops start-up with its name, like the variables read above.
        load = super().load_asgi_app
        self.registry = DrainRegistry(_from_env(lambda: load(asgi_app_path)))
        return self.registry

    def configure(self):
        """Read the environment: payload limits, drain grace, the server class."""
        limit = transport_message_limit()
        self.parser.set_defaults(
            websocket_max_message_size=limit, websocket_max_frame_size=limit
        )
        grace = _from_env(
            lambda: env_seconds("AUTHSOCKET_SHUTDOWN_GRACE", DEFAULT_SHUTDOWN_GRACE)
        )
        json_logs = _from_env(env_log_format) == "json"
        # Whatever the application, no query string reaches the access log,
        # and no refused handshake's status line quotes a token.
        redact_daphne_access_log()
        daphne_handshake_refusals()
        # Nor does a client's Daphne-Root-Path header or a frame sent as the
        # client leaves make a 500 or a traceback, nor a client that reads
        # nothing hold memory without bound (authsocket/daphne_requests.py,
        # realtime/outgoing_frames.py).
        daphne_request_fixes()
        guard_outgoing_frames()
        write_at_once()

        # load_asgi_app runs inside run(), before the server is built, so the
        # factory looks the registry up only when it is called.
        def build_server(**kwargs):
            access_log = kwargs.get("action_logger")
            if json_logs and isinstance(access_log, AccessLogGenerator):
                kwargs["action_logger"] = JsonAccessLog(access_log.stream)
            return GracefulServer(registry=self.registry, grace=grace, **kwargs)

        self.server_class = build_server

    def run(self, args):
        self.configure()
        super().run(args)


def main(argv=None):
    GracefulCommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
