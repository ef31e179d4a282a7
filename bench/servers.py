"""The servers under test: how each is prepared, started, probed and stopped.

Every server is daphne at `-v 0` on a listening socket the runner made (so
there is no race for a free port and the backlog is the same for all),
pinned to core 0, with a fresh, migrated SQLite database. The process itself
is started by tests/servers.py, the launcher the end-to-end tests use.
"""

import os
import secrets
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.servers import DaphneServer

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
BENCH_PYTHON = BENCH_DIR / ".venv-peers" / "bin" / "python"
SERVER_CORE, LOADGEN_CORE = "0", "1"
LISTEN_BACKLOG = 1024
MANAGE_TIMEOUT_S = 300.0

# authsocket's limits, raised so the bench measures the server and not its
# throttles (docs/protocol.md §1). The runner prints these with every result.
RAISED_LIMITS = {
    "AUTHSOCKET_MAX_CONNECTIONS_PER_USER": "100000",
    "AUTHSOCKET_FRAME_RATE": "1000000/s",
    "AUTHSOCKET_TICKET_THROTTLE": "10000000/min",
    "AUTHSOCKET_LOGIN_THROTTLE": "10000000/min",
    "AUTHSOCKET_LOGIN_ADDRESS_THROTTLE": "10000000/min",
}


@dataclass(frozen=True)
class ServerKind:
    """One stack under test and what it can be asked to do."""

    name: str
    project_dir: Path
    asgi_app: str
    transports: tuple[str, ...]
    scenarios: frozenset[str]
    uses_database_url: bool = False
    has_demo_data: bool = False
    env: tuple[tuple[str, str], ...] = ()  # set in this stack's environment


# Every scenario, in the order a run takes them (bench/README.md).
SCENARIO_ORDER = (
    "handshake",
    "reject",
    "echo",
    "idle",
    "fanout",
    "revocation",
    "storm",
    "presence",
    "scale",
)
AUTHSOCKET = ServerKind(
    name="authsocket",
    project_dir=REPO_DIR,
    asgi_app="authsocket.asgi:application",
    transports=("token", "subprotocol", "header", "ticket"),
    scenarios=frozenset(SCENARIO_ORDER),  # authsocket runs every scenario
    uses_database_url=True,
    has_demo_data=True,
)
NOAUTH = ServerKind(
    name="noauth",
    project_dir=BENCH_DIR / "baselines" / "noauth",
    asgi_app="noauth.asgi:application",
    transports=("token",),
    scenarios=frozenset({"handshake", "echo", "idle", "fanout", "storm"}),
)
PEER = ServerKind(
    name="peer",
    project_dir=BENCH_DIR / "baselines" / "peer",
    asgi_app="peer.asgi:application",
    transports=("token", "header"),
    scenarios=frozenset({"handshake", "reject", "echo", "idle", "storm"}),
)
# The same tree with instrumentation off (AUTHSOCKET_METRICS=0: every metrics
# call returns at once, the socket-metrics middleware passes through): the
# cost of counting, measured on the two figures it could move.
AUTHSOCKET_NOMETRICS = replace(
    AUTHSOCKET,
    name="authsocket-nometrics",
    transports=("token",),
    scenarios=frozenset({"handshake", "echo"}),
    env=(("AUTHSOCKET_METRICS", "0"),),
)
KINDS = {kind.name: kind for kind in (AUTHSOCKET, NOAUTH, PEER, AUTHSOCKET_NOMETRICS)}


@dataclass
class Deployment:
    """A prepared database and the environment every process of it shares."""

    kind: ServerKind
    workdir: Path
    python: str
    env: dict = field(default_factory=dict)

    @classmethod
    def create(cls, kind: ServerKind, workdir: Path, python: str) -> "Deployment":
        workdir.mkdir(parents=True, exist_ok=True)
        db_path = workdir / "db.sqlite3"
        env = {
            **os.environ,
            "PYTHONPATH": str(kind.project_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
            "BENCH_DB_PATH": str(db_path),
            "BENCH_SECRET_KEY": secrets.token_urlsafe(48),
        }
        if kind.uses_database_url:
            env.update(
                DJANGO_DEBUG="0",
                DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
                AUTHSOCKET_JWT_SECRET=secrets.token_urlsafe(48),
                DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
                DATABASE_URL=f"sqlite:///{db_path}",
                DEMO_PASSWORD=secrets.token_urlsafe(16),
                **RAISED_LIMITS,
            )
        env.update(kind.env)
        env.pop("REDIS_URL", None)
        return cls(kind, workdir, python, env)

    def manage(self, *args: str) -> str:
        """Runs a management command of this deployment and returns its stdout."""
        done = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=self.kind.project_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=MANAGE_TIMEOUT_S,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{self.kind.name}: manage.py {' '.join(args)} failed:\n"
                f"{done.stderr[-2000:]}"
            )
        return done.stdout

    def mint(self, prefix: str, users: int, ttl: int) -> Path:
        """Mints one token per user into a file (docs/protocol.md §5) and returns it."""
        out = self.manage(
            "mint_tokens", "--users", str(users), "--prefix", prefix, "--ttl", str(ttl)
        )
        tokens = [line.strip() for line in out.splitlines() if line.strip()]
        if len(tokens) != users:
            raise RuntimeError(f"{self.kind.name}: minted {len(tokens)} of {users}")
        path = self.workdir / f"tokens-{prefix}.txt"
        path.write_text("\n".join(tokens) + "\n")
        return path


class Server(DaphneServer):
    """One daphne process of a deployment, on its own listening socket.

    Launched by tests/servers.py, the launcher the tests use, pinned to the
    server core with a backlog the same for every stack.
    """

    def __init__(
        self,
        deployment: Deployment,
        label: str,
        extra_env=None,
        module="daphne",
        app: str | None = None,  # the stack's own application by default
    ):
        super().__init__(
            {**deployment.env, **(extra_env or {})},
            log_path=deployment.workdir / f"{label}.log",
            module=module,  # bench.profiled_daphne wraps daphne in a profiler
            app=app or deployment.kind.asgi_app,
            options=("-v", "0"),
            python=deployment.python,
            cwd=deployment.kind.project_dir,
            name=label,
            backlog=LISTEN_BACKLOG,
            core=SERVER_CORE,
        )
        self.deployment = deployment
        self.label = label

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart(self) -> None:
        self.stop()
        self.start()
