"""Real processes for the deployment tests: authsocket.serve as deployed, nginx.

daphne and Redis come from the one launcher, tests/servers.py. nginx prints
nothing on start, so its port is probed, bounded. Each class stops its
process in `stop()`, which fixtures call in `finally`.
"""

import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.servers import PROJECT, DaphneServer, RedisProcess, free_port, wait_for_port

__all__ = ["ROOT", "NginxProcess", "RedisProcess", "ServerProcess"]

ROOT = PROJECT
RENDER = ROOT / "deploy" / "nginx" / "render.py"


class ServerProcess(DaphneServer):
    """`python -m authsocket.serve` as deployed: behind a proxy, verbose.

    Its `ws` is the origin, as nginx's: the deploy client adds `/ws/`.
    """

    def __init__(self, name: str, env: dict, log_dir: Path, extra_args=()):
        super().__init__(
            env,
            log_path=log_dir / f"{name}.log",
            module="authsocket.serve",
            options=("--proxy-headers", "-v", "1", *extra_args),
            name=name,
            # Not a path the tests count in the access log (/api/me they do).
            ready_path="/healthz",
        )

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class NginxProcess:
    """nginx in the foreground with the project's site config, rendered for a test."""

    def __init__(
        self, directory: Path, upstream_ports: list[int], worker_connections=256
    ):
        self.dir = directory
        # A proxied WebSocket takes two connections (client, upstream).
        self.worker_connections = worker_connections
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.upstream_ports = upstream_ports
        self.access_log = self.dir / "access.log"
        self.error_log = self.dir / "error.log"
        self.process = None

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
worker_rlimit_nofile {self.worker_connections + 64};
pid {self.dir / "nginx.pid"};
error_log {self.dir / "main-error.log"} crit;
events {{ worker_connections {self.worker_connections}; }}
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
            self.process = subprocess.Popen(
                self.command(main),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        wait_for_port(self.port, timeout, self.process)
        return self

    def stop(self, timeout: float = 10.0):
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM is nginx's fast shutdown; SIGQUIT would wait for open sockets.
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

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
