"""authsocket.serve: the drain registry and the daphne limits (no services needed)."""

import asyncio
import signal

import pytest

from authsocket import serve


class FakeDaphne:
    """Records what the application sends, like daphne's handle_reply."""

    def __init__(self):
        self.sent = []

    async def send(self, message):
        if message["type"] == "websocket.send" and any(
            m["type"] == "websocket.close" for m in self.sent
        ):
            raise AssertionError("send after close reached the transport")
        self.sent.append(message)


def websocket_app(accept=True):
    """A consumer-like app: accepts, then echoes until websocket.disconnect."""

    async def app(scope, receive, send):
        assert (await receive())["type"] == "websocket.connect"
        if accept:
            await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                app.disconnect_codes.append(message["code"])
                return
            # A late send racing the shutdown close must not raise.
            await send({"type": "websocket.send", "text": message["text"]})

    app.disconnect_codes = []
    return app


async def start(registry, daphne):
    queue = asyncio.Queue()
    await queue.put({"type": "websocket.connect"})
    task = asyncio.ensure_future(
        registry({"type": "websocket"}, queue.get, daphne.send)
    )
    while not daphne.sent or daphne.sent[-1]["type"] != "websocket.accept":
        await asyncio.sleep(0)
    return queue, task


@pytest.mark.asyncio
async def test_shutdown_closes_accepted_sockets_with_4503():
    app = websocket_app()
    registry = serve.DrainRegistry(app)
    daphne = FakeDaphne()
    queue, task = await start(registry, daphne)

    assert await registry.close_websockets() == 1
    assert daphne.sent[-1] == {"type": "websocket.close", "code": 4503}

    await queue.put({"type": "websocket.receive", "text": "late"})
    await queue.put({"type": "websocket.disconnect", "code": 4503})
    assert await registry.wait_idle(1.0)
    await task
    assert app.disconnect_codes == [4503]
    assert [m["type"] for m in daphne.sent] == ["websocket.accept", "websocket.close"]


@pytest.mark.asyncio
async def test_socket_still_handshaking_is_refused_not_closed_with_a_code():
    started = asyncio.Event()

    async def app(scope, receive, send):
        await receive()
        started.set()
        await asyncio.Event().wait()  # never decides

    registry = serve.DrainRegistry(app)
    daphne = FakeDaphne()
    queue = asyncio.Queue()
    await queue.put({"type": "websocket.connect"})
    task = asyncio.ensure_future(
        registry({"type": "websocket"}, queue.get, daphne.send)
    )
    await asyncio.wait_for(started.wait(), 1)

    await registry.close_websockets()
    assert daphne.sent == [{"type": "websocket.close"}]
    assert not await registry.wait_idle(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_http_requests_are_waited_for_but_not_touched():
    release = asyncio.Event()

    async def app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    registry = serve.DrainRegistry(app)
    daphne = FakeDaphne()
    task = asyncio.ensure_future(registry({"type": "http"}, None, daphne.send))
    await asyncio.sleep(0)

    assert await registry.close_websockets() == 0
    assert not await registry.wait_idle(0.05)
    release.set()
    assert await registry.wait_idle(1.0)
    await task
    assert [m["type"] for m in daphne.sent] == [
        "http.response.start",
        "http.response.body",
    ]


@pytest.mark.asyncio
async def test_wait_idle_is_immediate_without_instances():
    assert await serve.DrainRegistry(None).wait_idle(0)


def test_transport_limit_is_twice_the_message_limit(monkeypatch):
    monkeypatch.setenv("AUTHSOCKET_MAX_MESSAGE_BYTES", "1000")
    assert serve.transport_message_limit() == 2000
    monkeypatch.delenv("AUTHSOCKET_MAX_MESSAGE_BYTES")
    assert serve.transport_message_limit() == 2 * 65536


def test_bad_message_limit_stops_start_up_with_the_variable_name(monkeypatch):
    monkeypatch.setenv("AUTHSOCKET_MAX_MESSAGE_BYTES", "64k")
    with pytest.raises(SystemExit, match="AUTHSOCKET_MAX_MESSAGE_BYTES"):
        serve.transport_message_limit()


@pytest.mark.parametrize("raw", ["5s", "inf", "nan", "-inf"])
def test_bad_shutdown_grace_stops_start_up_with_the_variable_name(monkeypatch, raw):
    monkeypatch.setenv("AUTHSOCKET_SHUTDOWN_GRACE", raw)
    with pytest.raises(SystemExit, match="AUTHSOCKET_SHUTDOWN_GRACE"):
        serve.GracefulCommandLineInterface().configure()


@pytest.mark.parametrize("raw, grace", [("2.5", 2.5), ("-1", 0.0), ("", 5.0)])
def test_shutdown_grace_is_read_from_env(monkeypatch, raw, grace):
    monkeypatch.setenv("AUTHSOCKET_SHUTDOWN_GRACE", raw)
    cli = serve.GracefulCommandLineInterface()
    cli.configure()
    cli.registry = serve.DrainRegistry(None)
    server = cli.server_class(
        application=cli.registry, endpoints=["tcp:port=0:interface=127.0.0.1"]
    )
    assert server.grace == grace


def test_daphne_options_pass_through_and_limits_default_from_env(monkeypatch):
    monkeypatch.setenv("AUTHSOCKET_MAX_MESSAGE_BYTES", "1000")
    cli = serve.GracefulCommandLineInterface()
    cli.configure()
    args = cli.parser.parse_args(["--proxy-headers", "-p", "0", "x:y"])
    assert (args.websocket_max_message_size, args.websocket_max_frame_size) == (
        2000,
        2000,
    )
    assert args.proxy_headers
    args = cli.parser.parse_args(["--websocket-max-message-size", "5", "x:y"])
    assert args.websocket_max_message_size == 5


def test_json_access_log_is_one_object_a_line_without_query_strings():
    import datetime
    import io
    import json

    stream = io.StringIO()
    log = serve.JsonAccessLog(stream)
    log(
        "http",
        "complete",
        {
            "client": "203.0.113.5:0",
            "method": "GET",
            "path": "/api/me",
            "status": 200,
            "size": 42,
        },
    )
    log("websocket", "connected", {"client": "203.0.113.5:0", "path": "/ws/"})
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["request"] == "GET /api/me"
    assert (first["status"], first["bytes"], first["client"]) == (
        200,
        42,
        "203.0.113.5:0",
    )
    assert second["request"] == "WSCONNECT /ws/"
    datetime.datetime.strptime(first["time"], "%Y-%m-%d %H:%M:%S,%f")


def test_json_access_log_is_chosen_by_the_log_format_variable(monkeypatch):
    monkeypatch.setenv("AUTHSOCKET_LOG_FORMAT", "json")
    cli = serve.GracefulCommandLineInterface()
    cli.configure()
    cli.registry = serve.DrainRegistry(None)
    server = cli.server_class(
        application=cli.registry,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        action_logger=serve.AccessLogGenerator(None),
    )
    assert isinstance(server.action_logger, serve.JsonAccessLog)
    monkeypatch.setenv("AUTHSOCKET_LOG_FORMAT", "plain")
    cli.configure()
    server = cli.server_class(
        application=cli.registry,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        action_logger=serve.AccessLogGenerator(None),
    )
    assert type(server.action_logger) is serve.AccessLogGenerator


def test_access_log_drops_query_strings_in_both_formats():
    import io

    serve.GracefulCommandLineInterface().configure()  # installs the plain redaction
    for kind in (serve.AccessLogGenerator, serve.JsonAccessLog):
        stream = io.StringIO()
        kind(stream)(
            "http",
            "complete",
            {
                "client": "127.0.0.1:1",
                "method": "GET",
                "path": "/ws/?token=eyJhbGciOi.secret.sig&ticket=t1",
                "status": 400,
                "size": 1,
            },
        )
        assert "/ws/" in stream.getvalue()
        assert "token" not in stream.getvalue() and "t1" not in stream.getvalue()


async def test_a_failing_drain_still_stops_the_server():
    class Broken(serve.DrainRegistry):
        async def close_websockets(self, code=serve.SHUTDOWN_CLOSE_CODE):
            raise RuntimeError("boom")

    server = serve.GracefulServer(
        application=None,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        registry=Broken(None),
        grace=0.1,
    )
    stopped = []
    server.stop = lambda: stopped.append(True)
    with pytest.raises(RuntimeError):
        await server.drain("test")
    assert stopped == [True]


async def test_two_signals_at_once_stop_the_reactor_once():
    # What a kill of `make run`'s process group does: make passes its SIGTERM
    # on to the server, which had one already. Both arrive before the drain
    # runs; Twisted raises on a second reactor.stop().
    server = serve.GracefulServer(
        application=None,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        registry=serve.DrainRegistry(None),
        grace=0.1,
    )
    stops = []
    server.stop = lambda: stops.append(True)
    server._on_signal(signal.SIGTERM)
    server._on_signal(signal.SIGTERM)  # stops at once
    assert stops == [True]
    await asyncio.wait_for(server.drain_task, 10)  # the drain still runs
    assert stops == [True]
