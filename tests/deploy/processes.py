"""Real processes for the deployment tests: daphne (authsocket.serve), nginx, Redis.

Every wait is bounded and driven by what the process prints (daphne's
"Listening on", Redis's "Ready to accept connections") where it prints
something; nginx prints nothing on start, so its port is probed. Each class
stops its process in `stop()`, which fixtures call in `finally`.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "deploy" / "nginx" / "render.py"


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
            time.sleep(0.05)


class OutputProcess:
    """A subprocess whose merged stdout/stderr is kept, logged and awaitable."""

    def __init__(self, name: str, args: list[str], env: dict, log_path: Path):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = None

    def start(self):
        """Start (or start again: output keeps accumulating across runs)."""
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # a Ctrl-C in the test run is not its signal
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self):
        with open(self.log_path, "a") as log:
            for line in self.proc.stdout:
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
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode} before "
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
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait_exit(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        if self._reader:
            self._reader.join(timeout)
        return code

    def stop(self, timeout: float = 10.0):
        """SIGTERM, then SIGKILL if it is still there after `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.wait_exit(timeout)


class ServerProcess(OutputProcess):
    """`python -m authsocket.serve` on a port the OS picks (-p 0)."""

    def __init__(self, name: str, env: dict, log_dir: Path, extra_args=()):
        args = [
            sys.executable,
            "-m",
            "authsocket.serve",
            "-b",
            "127.0.0.1",
            "-p",
            "0",
            "--proxy-headers",
            "-v",
            "1",
            *extra_args,
            "authsocket.asgi:application",
        ]
        super().__init__(name, args, env, log_dir / f"{name}.log")
        self.port = None

    def start(self, timeout: float = 30.0):
        mark = len(self.lines)
        super().start()
        match = self.wait_for(
            r"Listening on TCP address 127\.0\.0\.1:(\d+)", timeout, start=mark
        )
        self.port = int(match.group(1))
        return self

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class RedisProcess(OutputProcess):
    """A throw-away redis-server on a fixed free port (so it can come back)."""

    def __init__(self, log_dir: Path, port: int | None = None):
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
        super().__init__("redis", args, dict(os.environ), log_dir / "redis.log")

    def start(self, timeout: float = 15.0):
        mark = len(self.lines)
        super().start()
        self.wait_for(r"Ready to accept connections", timeout, start=mark)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class NginxProcess:
    """nginx in the foreground with the project's site config, rendered for a test."""

    def __init__(self, directory: Path, upstream_ports: list[int]):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.upstream_ports = upstream_ports
        self.access_log = self.dir / "access.log"
        self.error_log = self.dir / "error.log"
        self.proc = None

    def render(self) -> Path:
        site = self.dir / "site.conf"
        subprocess.run(
            [
                sys.executable,
                str(RENDER),
                "--listen",
                f"127.0.0.1:{self.port}",
                *[
                    arg
                    for port in self.upstream_ports
                    for arg in ("--upstream", f"127.0.0.1:{port}")
                ],
                "--access-log",
                str(self.access_log),
                "--error-log",
                str(self.error_log),
                "-o",
                str(site),
            ],
            check=True,
        )
        main = self.dir / "nginx.conf"
        temp = {
            k: self.dir / f"tmp-{k}" for k in ("body", "proxy", "fcgi", "uwsgi", "scgi")
        }
        main.write_text(
            f"""daemon off;
worker_processes 1;
pid {self.dir / "nginx.pid"};
error_log {self.dir / "main-error.log"} crit;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {site};
}}
"""
        )
        return main

    def command(self, main: Path) -> list[str]:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        return [
            binary,
            "-c",
            str(main),
            "-p",
            str(self.dir),
            "-e",
            str(self.dir / "e.log"),
        ]

    def start(self, timeout: float = 15.0):
        main = self.render()
        subprocess.run([*self.command(main), "-t", "-q"], check=True)
        with open(self.dir / "stderr.log", "w") as stderr:
            self.proc = subprocess.Popen(
                self.command(main),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        wait_for_port(self.port, timeout, self.proc)
        return self

    def stop(self, timeout: float = 10.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGTERM is nginx's fast shutdown; SIGQUIT would wait for open sockets.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in self.dir.glob("*.log") if p.is_file()
        )
