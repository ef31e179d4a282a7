"""Real daphne processes for end-to-end tests, on free ports.

Each server gets its own environment (database URL, TTLs, layer) so tests can
start one, two or several processes sharing a database, and stop or kill them.
Waits are bounded: a server that does not answer in time fails the test.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
START_TIMEOUT = 30.0


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


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run `manage.py` with this environment; returns stdout, fails loudly."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass
class DaphneServer:
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    # "authsocket.serve" runs daphne as `make run` does: SIGTERM closes with 4503.
    module: str = "daphne"
    app: str = "authsocket.asgi:application"
    options: tuple[str, ...] = ()  # extra daphne options

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def start(self) -> "DaphneServer":
        # Popen keeps its own copy of the descriptor; ours is closed right after.
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                self.module,
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                *self.options,
                self.app,
            ],
            cwd=PROJECT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if log is not subprocess.DEVNULL:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(f"{self.http}/api/me", timeout=2)
            except urllib.error.HTTPError:
                return  # 401: the app answers
            except OSError:
                time.sleep(0.05)  # nothing to await across processes: poll the port
        raise TimeoutError(f"daphne on port {self.port} did not start")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


@contextlib.contextmanager
def running(server: DaphneServer):
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'db.sqlite3'}"
