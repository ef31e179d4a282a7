"""Real processes for the tests and the bench: daphne on a port of its own.

One launcher for every daphne started from outside: the end-to-end tests,
the deployment tests (tests/deploy/processes.py adds nginx) and the bench
(bench/servers.py adds its deployments); and a redis-server to stop and start. Each server gets its own
environment, so several can share a database; every wait is bounded, and a
server that does not answer in time fails with the end of its output.
Standard library only: the bench imports it from its own virtualenv.
"""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from signal import SIGTERM

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database_url: str, **overrides: str) -> dict[str, str]:
    """A production-like environment: no debug, explicit secrets."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTHSOCKET_", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="authsocket.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="e2e-secret-key-0123456789-0123456789-0123456789",
        AUTHSOCKET_JWT_SECRET="e2e-jwt-secret-0123456789-0123456789-0123",
        DATABASE_URL=database_url,
        DEMO_PASSWORD="authsocket-demo",
        PYTHONUNBUFFERED="1",
    )
    env.pop("REDIS_URL", None)
    env.update(overrides)
    return env


def run_manage(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run `manage.py` with this environment, bounded; its exit and output."""
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run `manage.py` with this environment; returns stdout, fails loudly."""
    result = run_manage(env, *args, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def alice_rooms(env: dict[str, str], slugs: list[str]) -> list[str]:
    """Create public rooms with alice a member, in this server's database;
    their stream names, in the order of `slugs`."""
    manage(
        env,
        "shell",
        "-c",
        "from accounts.models import User; from realtime.models import Room, Membership;"
        "alice = User.objects.get(username='alice');"
        "[Membership.objects.create(user=alice,"
        " room=Room.objects.create(slug=slug, title=slug, public=True))"
        f" for slug in {slugs!r}]",
    )
    return [f"room:{slug}" for slug in slugs]


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'db.sqlite3'}"


def pinned(core: str | None, argv: list[str]) -> list[str]:
    """Prefixes `taskset -c core` where taskset exists (it execs: same pid)."""
    if core is None or not shutil.which("taskset"):
        return argv
    return ["taskset", "-c", core, *argv]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None):
    """Return once 127.0.0.1:port accepts connections; raise after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"process exited with {proc.returncode} before listening"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError as e:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on port {port} after {timeout}s"
                ) from e
            time.sleep(0.05)  # another process: nothing to await but its port


class OutputProcess:
    """A subprocess whose merged stdout/stderr is kept, logged and awaitable."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict,
        log_path: Path | None,
        cwd: Path = PROJECT,
    ):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = None

    def start(self, pass_fds=()):
        """Start (or start again: output keeps accumulating across runs)."""
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            pass_fds=pass_fds,
            start_new_session=True,  # a Ctrl-C in the test run is not its signal
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self):
        with contextlib.ExitStack() as stack:
            log = (
                stack.enter_context(open(self.log_path, "a")) if self.log_path else None
            )
            for line in self.process.stdout:
                if log:
                    log.write(line)
                    log.flush()
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        """Wait until a line from index `start` on matches `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            index = start
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    if match:
                        return match
                    index += 1
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode} before "
                        f"printing {pattern!r}:\n{''.join(self.lines)[-3000:]}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{self.name} did not print {pattern!r} within {timeout}s:\n"
                        f"{''.join(self.lines)[-3000:]}"
                    )
                self._changed.wait(remaining)

    def signal(self, signum):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signum)

    def wait_exit(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        if self._reader:
            self._reader.join(timeout)
        return code

    def stop(self, sig: int = SIGTERM, timeout: float = STOP_TIMEOUT):
        """`sig` (SIGTERM), then SIGKILL if it is still there after `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.wait_exit(timeout)


class RedisProcess(OutputProcess):
    """A throw-away redis-server on a fixed free port (so it can come back)."""

    def __init__(
        self,
        log_dir: Path | None = None,
        port: int | None = None,
        core: str | None = None,  # pinned to this CPU core (taskset)
    ):
        self.port = port or free_port()
        binary = shutil.which("redis-server") or "redis-server"
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]
        log_path = log_dir / "redis.log" if log_dir else None
        super().__init__("redis", pinned(core, args), dict(os.environ), log_path)

    def start(self, timeout: float = 15.0):
        mark = len(self.lines)
        super().start()
        self.wait_for(r"Ready to accept connections", timeout, start=mark)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class DaphneServer(OutputProcess):
    """daphne (or `authsocket.serve`, which runs it) serving one ASGI application.

    On `port` (a free one by default), or with `backlog`, on a listening
    socket made here and handed over (`--fd`): no race for the port, a new
    one at each start. Ready when the application answers HTTP at all.
    """

    def __init__(
        self,
        env: dict[str, str],
        port: int | None = None,
        log_path: Path | None = None,
        module: str = "daphne",  # "authsocket.serve": SIGTERM closes with 4503
        app: str = "authsocket.asgi:application",
        options: tuple[str, ...] = (),  # extra daphne options
        *,
        python: str = PYTHON,
        cwd: Path = PROJECT,
        name: str = "daphne",
        backlog: int | None = None,
        core: str | None = None,  # pinned to this CPU core (taskset)
        ready_path: str = "/api/me",
        start_timeout: float = START_TIMEOUT,  # longer under valgrind
    ):
        super().__init__(name, [], env, log_path, cwd)
        self.start_timeout = start_timeout
        # With a backlog, the port is the listener's, new at each start.
        self.port = None if backlog else port or free_port()
        self.module, self.app, self.options = module, app, tuple(options)
        self.python, self.backlog, self.core = python, backlog, core
        self.ready_path = ready_path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def start(self) -> "DaphneServer":
        listener = self._listener() if self.backlog else None
        where = (
            ["--fd", str(listener.fileno())]
            if listener
            else ["-b", "127.0.0.1", "-p", str(self.port)]
        )
        argv = [self.python, "-m", self.module, *where, *self.options, self.app]
        self.args = pinned(self.core, argv)
        try:
            super().start(pass_fds=(listener.fileno(),) if listener else ())
        finally:
            if listener:
                listener.close()  # daphne holds its own copy now
        self.wait_ready()
        return self

    def _listener(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(self.backlog)
        self.port = listener.getsockname()[1]
        return listener

    def wait_ready(self) -> None:
        """Poll until the application answers HTTP (any status), bounded.

        The port may accept before Django has loaded; only an answer proves it.
        """
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n"
                    f"{self.output[-3000:]}"
                )
            try:
                urllib.request.urlopen(f"{self.http}{self.ready_path}", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # 401, 404…: the application answers
            except OSError:
                time.sleep(0.05)  # nothing to await across processes: poll the port
        raise TimeoutError(f"{self.name} on port {self.port} did not start")

    def logs(self) -> str:
        """Everything the log file holds (earlier runs too), else this run's output."""
        return (
            self.log_path.read_text(errors="replace") if self.log_path else self.output
        )


@contextlib.contextmanager
def running(server: DaphneServer):
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def demo_server(
    template: Path,
    directory: Path,
    *,
    module: str = "authsocket.serve",
    options: tuple[str, ...] = (),
    **env: str,
):
    """daphne on a copy of the migrated demo database `template`, in
    `directory` with its log, the environment changed by `env`; stopped on exit."""
    shutil.copy(template, directory / "db.sqlite3")
    server = DaphneServer(
        server_env(sqlite_url(directory), **env),
        log_path=directory / "daphne.log",
        module=module,
        options=options,
    )
    with running(server):
        yield server
