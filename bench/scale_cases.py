"""The scale cases of issue 21: curves on one process, three behind nginx.

Each case starts the processes it needs (`authsocket.serve`, which raises
its open-file limit as deployed) and stops them; the load generator holds
every socket of a case in one process pinned to its core, as always.

- `scale/curve`: handshakes/s and RSS per socket with 0 … 10,000 idle
  sockets open, revocation among the most, memory after they all close;
- `scale/fanout-memory`, `scale/fanout-redis`: one publish to N subscribers,
  N growing, through the in-memory layer and through channels_redis;
- `scale/cluster`: three processes behind nginx with Redis and PostgreSQL.
"""

import contextlib
import resource
import secrets
import shutil
import socket
from dataclasses import replace
from pathlib import Path

from bench.servers import Server
from tests.deploy.processes import NginxProcess
from tests.servers import RedisProcess, running

SERVE = "authsocket.serve"
SCALE_APP = "bench.scale_app:application"  # authsocket plus malloc_trim
FANOUT_ROOM = "lobby"
TOKEN_TTL_S = 6 * 3600
PROCESSES = 3
FD_HEADROOM = 256  # descriptors beyond the sockets: logs, database, Redis
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
# The load generator's ceiling per case: opening 10,000 sockets, several
# batches at each level and the fan-outs take a few minutes on two cores.
CASE_TIMEOUT_S = 600.0


def cases(stack, params: dict, run: int, loadgen):
    """Yields (case name, callable); `loadgen` is bench.run's."""
    yield "scale/curve", lambda: curve_case(stack, params, run, loadgen)
    for layer in ("memory", "redis"):
        yield (
            f"scale/fanout-{layer}",
            lambda v=layer: fanout_case(stack, params, v, loadgen),
        )
    yield "scale/cluster", lambda: cluster_case(stack, params["cluster"], loadgen)


def descriptors_missing(sockets: int) -> str | None:
    """Why this machine cannot hold `sockets` in one process, or None.

    The runner and the load generator raise their soft limit to the hard
    one, and `authsocket.serve` does the same: the hard limit decides.
    """
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    needed = sockets + FD_HEADROOM
    if hard != resource.RLIM_INFINITY and hard < needed:
        return (
            f"open-file hard limit {hard} < {needed} for {sockets:,} sockets: "
            "raise it (ulimit -Hn, LimitNOFILE) and run again"
        )
    return None


def scale_tokens(stack, count: int) -> Path:
    """One user per socket, minted once per stack (their sessions stay open)."""
    path = stack.deployment.workdir / "tokens-scale.txt"
    if not path.exists() or len(path.read_text().split()) < count:
        return stack.deployment.mint("scale", count, TOKEN_TTL_S)
    return path


def curve_case(stack, params: dict, run: int, loadgen) -> dict:
    """Handshakes/s and memory per socket at each level, on a fresh process."""
    levels, batch = params["levels"], params["batch"]
    why = descriptors_missing(max(levels) + batch["concurrency"])
    if why:
        return {"status": "n/a", "reason": why}
    tokens = scale_tokens(stack, max(levels) + batch["count"])
    # Minting again opens new sessions: each run revokes sessions of its own.
    revoked = stack.deployment.mint(
        "scalerev", params["revocation_samples"], TOKEN_TTL_S
    )
    server = Server(stack.deployment, "scale-curve", module=SERVE, app=SCALE_APP)
    with running(server):
        return loadgen(
            server,
            "scale_curve",
            tokens,
            {
                "levels": levels,
                "batch": batch,
                "server_pid": server.pid,
                "revocation_tokens_file": str(revoked),
                "revocation_samples": params["revocation_samples"],
            },
            timeout=CASE_TIMEOUT_S,
        )


def fanout_case(stack, params: dict, layer: str, loadgen) -> dict:
    """The fan-out curve on a fresh process, in memory or through a private Redis."""
    levels = params["fanout_levels"] if layer == "memory" else params["redis_levels"]
    why = descriptors_missing(max(levels) + 1)
    if why:
        return {"status": "n/a", "reason": why}
    tokens = scale_tokens(stack, max(params["levels"]) + params["batch"]["count"])
    with contextlib.ExitStack() as cleanup:
        env, counted = {}, {}
        if layer == "redis":
            if shutil.which("redis-server") is None:
                return {"status": "n/a", "reason": "no redis-server on this machine"}
            redis = RedisProcess(stack.deployment.workdir).start()
            cleanup.callback(redis.stop)
            env["REDIS_URL"] = redis.url
            counted["redis_url"] = redis.url  # its commands are this case's only
        server = Server(stack.deployment, f"scale-fanout-{layer}", env, module=SERVE)
        cleanup.enter_context(running(server))
        return loadgen(
            server,
            "scale_fanout",
            tokens,
            {
                "levels": levels,
                "publishes": params["publishes"],
                "room": FANOUT_ROOM,
                "server_pid": server.pid,
                **counted,
            },
            timeout=CASE_TIMEOUT_S,
        )


def cluster_missing() -> str | None:
    """Why three processes behind nginx cannot run here, or None."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        return "nginx is not installed (apt-get install -y nginx; bench/setup_peers.sh does)"
    if shutil.which("redis-server") is None:
        return "no redis-server on this machine"
    try:
        socket.create_connection((POSTGRES["host"], POSTGRES["port"]), 2).close()
    except OSError as exc:
        return (
            f"PostgreSQL not reachable on {POSTGRES['host']}:{POSTGRES['port']}: {exc}"
        )
    return None


def admin_dsn() -> str:
    return (
        f"host={POSTGRES['host']} port={POSTGRES['port']} user={POSTGRES['user']} "
        "dbname=postgres"
    )


@contextlib.contextmanager
def postgres_database():
    """A fresh database of the bench's own, dropped afterwards; yields its URL."""
    import psycopg

    name = f"bench_scale_{secrets.token_hex(6)}"
    with psycopg.connect(admin_dsn(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            f"postgres://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}"
        )
    finally:
        with psycopg.connect(admin_dsn(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


class Cluster:
    """nginx in front of the processes, as the load generator sees it."""

    def __init__(self, nginx: NginxProcess, servers: list[Server]):
        self.nginx, self.servers = nginx, servers

    @property
    def ws(self) -> str:
        return f"{self.nginx.ws}/ws/"

    def cpu_seconds(self) -> float:
        return sum(server.cpu_seconds() for server in self.servers)


def cluster_case(stack, params: dict, loadgen) -> dict:
    """Three `authsocket.serve` processes behind nginx, one Redis, PostgreSQL."""
    why = cluster_missing() or descriptors_missing(params["sockets"])
    if why:
        return {"status": "n/a", "reason": why}
    workdir = stack.deployment.workdir / "cluster"
    workdir.mkdir(exist_ok=True)
    metrics_token = secrets.token_urlsafe(24)
    token_file = workdir / "metrics-token.txt"  # never on a command line
    token_file.write_text(metrics_token)
    with contextlib.ExitStack() as cleanup:
        redis = RedisProcess(workdir).start()
        cleanup.callback(redis.stop)
        database_url = cleanup.enter_context(postgres_database())
        deployment = replace(
            stack.deployment,
            workdir=workdir,
            env={
                **stack.deployment.env,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis.url,
                "AUTHSOCKET_METRICS_TOKEN": metrics_token,
            },
        )
        deployment.manage("migrate", "--no-input", "-v", "0")
        deployment.manage("demo_data")
        tokens = deployment.mint("cluster", params["sockets"] + 1, TOKEN_TTL_S)
        revoked = deployment.mint(
            "clusterrev", params["revocation_samples"], TOKEN_TTL_S
        )
        servers = [
            Server(deployment, f"cluster-{i}", module=SERVE) for i in range(PROCESSES)
        ]
        for server in servers:
            cleanup.enter_context(running(server))
        nginx = NginxProcess(
            workdir / "nginx",
            [server.port for server in servers],
            worker_connections=4 * params["sockets"] + 256,
        ).start()
        cleanup.callback(nginx.stop)
        return loadgen(
            Cluster(nginx, servers),
            "scale_cluster",
            tokens,
            {
                "sockets": params["sockets"],
                "publishes": params["publishes"],
                "room": FANOUT_ROOM,
                "process_urls": [server.http for server in servers],
                "metrics_token_file": str(token_file),
                "revocation_tokens_file": str(revoked),
                "revocation_samples": params["revocation_samples"],
            },
            timeout=CASE_TIMEOUT_S,
        )
