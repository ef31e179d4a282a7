"""Benchmark runner: authsocket against the no-auth and peer baselines.

    bench/.venv-peers/bin/python -m bench.run [--quick] [--runs N]

Prepares a fresh migrated SQLite database per stack, mints tokens, starts
each server (daphne -v 0, core 0), then runs every scenario on every stack
in turn, rotating the order each run (A/B alternation), and writes the
medians to bench/results/<date>.json, bench/RESULTS.md and a PNG chart.
"""

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import report, scale_cases
from bench.servers import (
    AUTHSOCKET,
    BENCH_DIR,
    BENCH_PYTHON,
    KINDS,
    LOADGEN_CORE,
    RAISED_LIMITS,
    REPO_DIR,
    SCENARIO_ORDER,
    SERVER_CORE,
    Deployment,
    Server,
)
from tests.servers import RedisProcess, pinned

LOADGEN_TIMEOUT_S = 240.0
TOKEN_TTL_S = 6 * 3600
FANOUT_ROOM = "lobby"  # public room made by `manage.py demo_data`
ORIGIN = "http://127.0.0.1"  # browsers always send one; every stack checks it
WARMUP = {"count": 50, "concurrency": 10}
# The result key that counts operations, per scenario that has one.
OPERATION_COUNTS = ("ok", "refused", "round_trips", "subscribes")


@dataclass
class Plan:
    """Sizes of every scenario; --quick shrinks them to about a minute."""

    runs: int
    handshake: dict
    reject: dict
    echo: dict
    idle: dict
    fanout: dict
    revocation: dict
    storm: dict
    presence: dict
    scale: dict
    revocation_variants: tuple[str, ...] = (
        "memory",
        "redis-same-process",
        "redis-cross-process",
    )
    transports: tuple[str, ...] = ()  # handshake transports; empty: all
    only: tuple[str, ...] = ()  # case-name prefixes to run; empty: all
    users: int = field(init=False)

    def __post_init__(self):
        self.users = max(
            self.storm["count"],
            self.idle["count"],
            self.fanout["subscribers"] + 1,
            self.presence["delay"]["subscribers"] + self.presence["delay"]["probes"],
            self.presence["restart"]["sockets"] + self.presence["restart"]["observers"],
        )


FULL = Plan(
    runs=3,
    handshake={"count": 2000, "concurrency": 50},
    reject={"count": 2000, "concurrency": 50},
    echo={"concurrency": 50, "duration": 10},
    idle={"count": 2000, "concurrency": 50},
    fanout={"subscribers": 1000, "publishes": 20},
    revocation={"samples": 100},
    storm={"count": 2000, "concurrency": 100, "deadline": 30},
    presence={
        "churn": {
            "watchers": 200,  # each join/leave is a frame to every watcher
            "churners": 20,
            "cycles": 5,
            "duration": 10,
            "interval": 0.2,
        },
        "delay": {"subscribers": 1000, "probes": 20},
        "paced_rate": 10,  # joins+leaves x watchers: 4,000 frames/s
        # Paced, a case sees few markers a second: 30 s gives its p99 150
        # markers (x 200 watchers) instead of resting on the worst one or two.
        "paced_duration": 30,
        "redis": {"sockets": 200, "idle_s": 3},
        "restart": {"sockets": 1000, "observers": 20, "deadline": 30},
    },
    scale={
        "levels": [100, 1000, 5000, 10000],  # idle sockets held by one process
        "batch": {"count": 500, "concurrency": 50, "rounds": 3},
        "revocation_samples": 20,
        "fanout_levels": [100, 1000, 5000, 10000],
        "redis_levels": [100, 1000],
        "publishes": 10,
        "cluster": {"sockets": 3000, "publishes": 10, "revocation_samples": 51},
    },
)
QUICK = Plan(
    runs=1,
    handshake={"count": 500, "concurrency": 20},
    reject={"count": 500, "concurrency": 20},
    echo={"concurrency": 20, "duration": 2},
    idle={"count": 500, "concurrency": 50},
    fanout={"subscribers": 200, "publishes": 5},
    revocation={"samples": 10},
    storm={"count": 500, "concurrency": 100, "deadline": 15},
    presence={
        "churn": {
            "watchers": 200,
            "churners": 10,
            "cycles": 5,
            "duration": 3,
            "interval": 0.2,
        },
        "delay": {"subscribers": 200, "probes": 10},
        "paced_rate": 10,  # joins+leaves x watchers: 4,000 frames/s
        "paced_duration": 3,
        "redis": {"sockets": 100, "idle_s": 2},
        "restart": {"sockets": 200, "observers": 10, "deadline": 20},
    },
    scale={
        "levels": [50, 200],
        "batch": {"count": 100, "concurrency": 20, "rounds": 1},
        "revocation_samples": 5,
        "fanout_levels": [50, 200],
        "redis_levels": [50, 200],
        "publishes": 3,
        "cluster": {"sockets": 150, "publishes": 3, "revocation_samples": 6},
    },
    revocation_variants=("memory", "redis-cross-process"),
)
ALL_SERVERS = "authsocket,noauth,peer,authsocket-nometrics"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short run")
    parser.add_argument("--runs", type=int, help="override the number of runs")
    parser.add_argument("--servers", default=ALL_SERVERS)
    parser.add_argument("--scenarios", default=",".join(SCENARIO_ORDER))
    parser.add_argument(
        "--transports",
        default="",
        help="handshake transports to measure (default: every one a stack has); "
        "`token` alone puts the metrics on/off pair side by side in each run",
    )
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated case-name prefixes to run, e.g. presence/paced "
        "(default: every case of the scenarios)",
    )
    parser.add_argument("--python", default=str(BENCH_PYTHON), help="runs servers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--app-dir", default=str(REPO_DIR), help="the authsocket checkout to run"
    )
    parser.add_argument("--out", default=str(BENCH_DIR / "results"))
    parser.add_argument(
        "--label",
        default="partial",
        help="names the report of a run of fewer stacks or scenarios than all: "
        "results/<date>-<label>.md, leaving RESULTS.md to full runs",
    )
    return parser.parse_args()


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def core_missing(app_dir: Path) -> str | None:
    """Why authsocket cannot be benchmarked from this tree, or None."""
    for needed in ("manage.py", "authsocket/asgi.py"):
        if not (app_dir / needed).exists():
            return f"core missing: no {needed} in {app_dir}"
    return None


def app_commit(app_dir: Path) -> str:
    """The commit of the authsocket tree under test, '+dirty' if it has edits."""

    def git(*argv):
        return subprocess.run(
            ["git", "-C", str(app_dir), *argv], capture_output=True, text=True
        ).stdout.strip()

    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    return (git("rev-parse", "--short", "HEAD") or "unknown") + dirty


def redis_missing(url: str) -> str | None:
    """Why the Redis variants cannot run, or None."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        return f"Redis not reachable for {url}: {exc}"
    return None


class Stack:
    """A prepared deployment, its main server and its token files."""

    def __init__(
        self, deployment: Deployment, plan: Plan, revocations: int, redis_url: str
    ):
        self.deployment = deployment
        self.redis_url = redis_url
        self.kind = deployment.kind
        self.plan = plan
        self.tokens = deployment.mint("bench", plan.users, TOKEN_TTL_S)
        self.revocation_tokens = (
            deployment.mint("rev", revocations, TOKEN_TTL_S)
            if "revocation" in self.kind.scenarios
            else None
        )
        self.server = Server(deployment, self.kind.name).start()
        self.warm()

    def warm(self) -> None:
        """Handshakes per transport, not recorded: imports, first queries,
        connection setup and the process's growth to its working size happen
        here rather than in the first measurement.

        The small rounds alone were not enough: the first full-size case after
        them cost 20-30 % more server CPU per handshake than the next ones (the
        heap and the daphne/Twisted structures grow to the load's size once),
        so one full-size round, unrecorded, comes last.
        """
        for transport in self.kind.transports:
            loadgen(
                self.server, "handshake", self.tokens, WARMUP | {"transport": transport}
            )
        loadgen(
            self.server,
            "handshake",
            self.tokens,
            self.plan.handshake | {"transport": self.kind.transports[0]},
        )

    def restart(self, warm: bool = True) -> None:
        self.server.restart()
        if warm:
            self.warm()


def build_stack(name: str, args, plan: Plan, workdir: Path, skipped: dict):
    """Prepares one stack, or records why it is skipped and returns None."""
    kind = KINDS[name]
    reason = None
    if kind.project_dir == AUTHSOCKET.project_dir:  # authsocket, any variant
        kind = replace(kind, project_dir=Path(args.app_dir).resolve())
        reason = core_missing(kind.project_dir)
    if reason:
        skipped[name] = reason
        log(f"{name}: n/a ({reason})")
        return None
    started = time.monotonic()
    deployment = Deployment.create(kind, workdir / name, args.python)
    deployment.manage("migrate", "--no-input", "-v", "0")
    if kind.has_demo_data:
        try:
            deployment.manage("demo_data")
        except RuntimeError as exc:
            log(f"{name}: demo_data failed, fan-out will be n/a: {exc}")
    revocations = plan.revocation["samples"] * len(plan.revocation_variants) * plan.runs
    stack = Stack(deployment, plan, revocations, args.redis_url)
    log(
        f"{name}: ready on port {stack.server.port} (pid {stack.server.pid}), "
        f"prepared in {time.monotonic() - started:.1f} s"
    )
    return stack


def build_stacks(args, plan: Plan, workdir: Path, skipped: dict) -> list[Stack]:
    """Prepares the stacks side by side (preparation is not measured).

    A stack that fails to prepare is reported as skipped; the others run.
    """
    names = args.servers.split(",")
    with ThreadPoolExecutor() as pool:
        futures = [
            pool.submit(build_stack, name, args, plan, workdir, skipped)
            for name in names
        ]
    stacks = []
    for name, future in zip(names, futures, strict=True):
        try:
            stack = future.result()
        except Exception as exc:
            skipped[name] = f"could not be prepared: {exc}"[:500]
            log(f"{name}: {skipped[name]}")
            continue
        if stack is not None:
            stacks.append(stack)
    return stacks


def loadgen(
    server: Server,
    scenario: str,
    tokens: Path,
    params: dict,
    timeout: float = LOADGEN_TIMEOUT_S,
) -> dict:
    """Runs one scenario in a separate, pinned load-generator process."""
    spec = {
        "scenario": scenario,
        "ws_url": server.ws,
        "origin": ORIGIN,
        "tokens_file": str(tokens),
        "params": params,
    }
    argv = pinned(LOADGEN_CORE, [sys.executable, "-m", "bench.loadgen"])
    cpu_before = server.cpu_seconds()
    try:
        done = subprocess.run(
            [*argv, json.dumps(spec)],
            cwd=REPO_DIR,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {
            "status": "error",
            "error": f"load generator over {timeout} s",
        }
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"status": "error", "error": done.stderr[-500:]}
    return with_server_cpu(json.loads(lines[-1]), server.cpu_seconds() - cpu_before)


def with_server_cpu(result: dict, cpu: float) -> dict:
    """Adds the server's CPU time, and per operation where there is a count.

    CPU per operation moves much less than throughput when something else
    shares the machine, so it is the steadier figure to compare.
    """
    result["server_cpu_s"] = round(cpu, 3)
    ops = next((result[k] for k in OPERATION_COUNTS if result.get(k)), None)
    if ops:
        result["server_cpu_ms_per_op"] = round(cpu * 1000 / ops, 4)
    return result


def cases(scenario: str, stack: Stack, plan: Plan, run: int):
    """Yields (case name, callable) for one scenario on one stack."""
    params = dict(getattr(plan, scenario))
    if scenario == "handshake":
        # Rotated each run, so that no transport is always measured first.
        wanted = plan.transports or stack.kind.transports
        own = [t for t in stack.kind.transports if t in wanted]
        shift = run % max(len(own), 1)
        transports = own[shift:] + own[:shift]
        for transport in transports:
            yield (
                f"handshake/{transport}",
                lambda t=transport: loadgen(
                    stack.server, "handshake", stack.tokens, {**params, "transport": t}
                ),
            )
    elif scenario == "idle":
        yield "idle", lambda: idle_case(stack, params)
    elif scenario == "storm":
        yield "storm", lambda: storm_case(stack, params, run < plan.runs - 1)
    elif scenario == "revocation":
        for variant in plan.revocation_variants:
            yield (
                f"revocation/{variant}",
                lambda v=variant: revocation_case(stack, params, plan, v, run),
            )
    elif scenario == "fanout":
        for layer in ("memory", "redis"):
            yield f"fanout/{layer}", lambda v=layer: fanout_case(stack, params, v)
    elif scenario == "presence":
        yield from presence_cases(stack, params, run)
    elif scenario == "scale":
        yield from scale_cases.cases(stack, params, run, loadgen)
    else:
        yield scenario, lambda: loadgen(stack.server, scenario, stack.tokens, params)


def idle_case(stack: Stack, params: dict) -> dict:
    """Idle memory is measured on a freshly started server process.

    The scenario warms the process itself before its first RSS reading.
    """
    stack.restart(warm=False)
    return loadgen(
        stack.server, "idle", stack.tokens, {**params, "server_pid": stack.server.pid}
    )


def storm_case(stack: Stack, params: dict, restart_after: bool) -> dict:
    """The storm leaves a fresh process behind when more runs follow.

    A stack that collapses under the storm keeps working off abandoned
    handshakes for a while; the next run must not pay for that.
    """
    try:
        return loadgen(stack.server, "storm", stack.tokens, params)
    finally:
        if restart_after:
            stack.restart()


def fanout_case(stack: Stack, params: dict, layer: str) -> dict:
    """Fan-out through the in-memory layer, or through channels_redis.

    The in-memory layer scans every channel and group on each receive, so
    its fan-out cost grows with the square of the subscribers; the Redis
    case shows the same process without that.
    """
    params = {**params, "room": FANOUT_ROOM}
    if layer == "memory":
        return loadgen(stack.server, "fanout", stack.tokens, params)
    why = redis_missing(stack.redis_url)
    if why:
        return {"status": "n/a", "reason": why}
    label = f"{stack.kind.name}-fanout-redis"
    server = Server(stack.deployment, label, {"REDIS_URL": stack.redis_url}).start()
    try:
        return loadgen(server, "fanout", stack.tokens, params)
    finally:
        server.stop()


PRESENCE_SETTINGS = {"DJANGO_SETTINGS_MODULE": "bench.presence_app.settings"}


def presence_cases(stack: Stack, params: dict, run: int):
    """On vs off while churning as fast as possible and paced (each pair on
    one server, interleaved), delivery delay, Redis commands, restart.

    Every Redis case uses a redis-server of its own (tests/servers.py), so
    INFO commandstats counts this server's commands and nobody else's.
    """
    churn, paced = params["churn"], params["paced_rate"]
    for pace, rate, duration, churners_ask in (
        ("churn", 0, churn["duration"], True),
        ("paced", paced, params.get("paced_duration", churn["duration"]), True),
        ("quiet", 0, churn["duration"], False),  # churners counted, not told
    ):
        for layer in ("memory", "redis"):
            case = {
                **churn,
                "rate": rate,
                "duration": duration,
                "on_first": run % 2 == 0,
                "churners_ask": churners_ask,
            }
            yield (
                f"presence/{pace}-{layer}",
                lambda c=case, v=layer: presence_case(
                    stack, "presence_churn_ab", c, v == "redis"
                ),
            )
    for layer in ("memory", "redis"):
        yield (
            f"presence/delay-{layer}",
            lambda v=layer: presence_case(
                stack,
                "presence_delay",
                {**params["delay"], "room": FANOUT_ROOM},
                v == "redis",
            ),
        )
    yield (
        "presence/redis-commands",
        lambda: presence_case(stack, "presence_redis", params["redis"], True),
    )
    yield "presence/restart", lambda: presence_restart_case(stack, params["restart"])


@contextlib.contextmanager
def private_redis(stack: Stack):
    """A redis-server of the case's own, stopped afterwards.

    On the load generator's core: left to the scheduler, it was found on
    the server's core in about a third of the samples, taking its time
    from the server under test (more of it on the side that calls Redis
    more).
    """
    redis = RedisProcess(stack.deployment.workdir, core=LOADGEN_CORE).start()
    try:
        yield redis
    finally:
        redis.stop()


def presence_case(stack: Stack, scenario: str, params: dict, redis: bool) -> dict:
    """One presence scenario on a fresh server with the bench's stream kinds."""
    env = dict(PRESENCE_SETTINGS)
    with contextlib.ExitStack() as cleanup:
        if redis:
            if shutil.which("redis-server") is None:
                return {"status": "n/a", "reason": "no redis-server on this machine"}
            env["REDIS_URL"] = cleanup.enter_context(private_redis(stack)).url
            if scenario == "presence_redis":  # reads that server's INFO
                params = {**params, "redis_url": env["REDIS_URL"]}
        label = f"{stack.kind.name}-{scenario}"
        server = Server(stack.deployment, label, env).start()
        cleanup.callback(server.stop)
        if scenario == "presence_churn_ab":  # reads the server's CPU per slice
            params = {**params, "server_pid": server.pid}
        return loadgen(server, scenario, stack.tokens, params)


def presence_restart_case(stack: Stack, params: dict) -> dict:
    """Two processes sharing a private Redis; the load generator stops the first
    (SIGTERM: `authsocket.serve` closes its sockets with 4503 and leaves the
    registry) and its clients come back on the second."""
    if shutil.which("redis-server") is None:
        return {"status": "n/a", "reason": "no redis-server on this machine"}
    with private_redis(stack) as redis:
        env = {**PRESENCE_SETTINGS, "REDIS_URL": redis.url}
        first = Server(stack.deployment, "presence-a", env, module="authsocket.serve")
        second = Server(stack.deployment, "presence-b", env, module="authsocket.serve")
        try:
            first.start()
            second.start()
            params = {
                **params,
                "room": FANOUT_ROOM,
                "other_ws_url": second.ws,
                "server_pid": first.pid,
            }
            result = loadgen(first, "presence_restart", stack.tokens, params)
            result.pop("server_cpu_ms_per_op", None)  # the process it measured died
            return result
        finally:
            first.stop()
            second.stop()


def revocation_case(
    stack: Stack, params: dict, plan: Plan, variant: str, run: int
) -> dict:
    """Logout → 4403 in one process (in-memory layer) or with Redis (1 or 2)."""
    samples = params["samples"]
    variants = plan.revocation_variants
    offset = run * len(variants) + variants.index(variant)
    tokens = slice_tokens(stack, offset * samples, samples, variant)
    if variant == "memory":
        return loadgen(stack.server, "revocation", tokens, params)
    why = redis_missing(stack.redis_url)
    if why:
        return {"status": "n/a", "reason": why}
    env = {"REDIS_URL": stack.redis_url}
    first = Server(stack.deployment, f"{stack.kind.name}-redis-a", env).start()
    second = Server(stack.deployment, f"{stack.kind.name}-redis-b", env)
    try:
        if variant == "redis-cross-process":
            second.start()
            params = {**params, "logout_ws_url": second.ws}
        return loadgen(first, "revocation", tokens, params)
    finally:
        first.stop()
        second.stop()


def slice_tokens(stack: Stack, start: int, count: int, label: str) -> Path:
    """Writes the revocation tokens reserved for one case: each is used once."""
    lines = stack.revocation_tokens.read_text().split()[start : start + count]
    path = stack.deployment.workdir / f"tokens-rev-{label}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_all(stacks: list[Stack], plan: Plan, scenarios: list[str]) -> list[dict]:
    """Every scenario on every stack, the stack order rotated each run."""
    records = []
    for run in range(plan.runs):
        order = stacks[run % len(stacks) :] + stacks[: run % len(stacks)]
        for scenario in scenarios:
            for stack in order:
                if scenario in stack.kind.scenarios:
                    records += run_cases(scenario, stack, plan, run)
    return records


def run_cases(scenario: str, stack: Stack, plan: Plan, run: int) -> list[dict]:
    records = []
    for case, measure in cases(scenario, stack, plan, run):
        if plan.only and not case.startswith(plan.only):
            continue
        if not stack.server.alive():
            log(f"{stack.kind.name}: server died, restarting")
            stack.server.start()
            stack.warm()
        load = os.getloadavg()[0]
        try:
            result = measure()
        except Exception as exc:  # one failed case must not lose the others
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:500]}
        for name, one in split_result(case, result):
            log(f"run {run + 1} {stack.kind.name:10} {name:32} {brief(one)}")
            records.append(
                {
                    "run": run,
                    "server": stack.kind.name,
                    "case": name,
                    "loadavg_1m": round(load, 2),
                    "result": one,
                }
            )
    return records


def split_result(case: str, result: dict) -> list[tuple[str, dict]]:
    """A case measuring two sides at once (`"split"`) is recorded as two cases,
    `<case>-<side>`, each with the load generator's own figures."""
    split = result.get("split")
    if not split:
        return [(case, result)]
    shared = {
        k: v for k, v in result.items() if k != "split" and not k.startswith("server_")
    }
    return [(f"{case}-{side}", {**shared, **one}) for side, one in split.items()]


def brief(result: dict) -> str:
    """A one-line summary of a result for the console."""
    if result.get("status") != "ok":
        return f"{result.get('status')}: {result.get('reason') or result.get('error')}"
    keys = [k for k in report.HEADLINE_KEYS if k in result]
    return " ".join(f"{k}={result[k]}" for k in keys)


def medians(records: list[dict]) -> dict:
    """server → case → metric → median over runs (numbers only).

    A case that was n/a or failed in every run keeps its last status/reason.
    """
    grouped: dict = {}
    for record in records:
        grouped.setdefault(record["server"], {}).setdefault(record["case"], []).append(
            record["result"]
        )
    return {
        server: {case: median_of(results) for case, results in by_case.items()}
        for server, by_case in grouped.items()
    }


def median_of(results: list[dict]) -> dict:
    ok = [r for r in results if r.get("status") == "ok"]
    if not ok:
        return results[-1]
    merged = {"status": "ok", "runs": len(ok), "failed_runs": len(results) - len(ok)}
    for key in ok[0]:
        values = [r[key] for r in ok if isinstance(r.get(key), (int, float))]
        if values and not isinstance(ok[0][key], bool):
            merged[key] = round(statistics.median(values), 3)
    merged["loadgen_bound"] = any(r.get("loadgen_bound") for r in ok)
    return merged


def is_complete(args) -> bool:
    """Every stack and every scenario: a run RESULTS.md may show."""
    every_case = not args.cases
    return (
        every_case
        and set(args.servers.split(",")) >= set(ALL_SERVERS.split(","))
        and set(args.scenarios.split(",")) >= set(SCENARIO_ORDER)
    )


def metrics_instructions(args) -> dict | None:
    """bench/instructions.py, when metrics on vs off is measured and valgrind exists."""
    if "authsocket-nometrics" not in args.servers.split(","):
        return None
    if shutil.which("valgrind") is None:
        return {"status": "n/a", "reason": "no valgrind on this machine"}
    argv = [args.python, "-m", "bench.instructions"]
    trips = ["--round-trips", "300"] if args.quick else []
    done = subprocess.run(
        pinned(SERVER_CORE, argv + trips),
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        log(f"bench.instructions failed: {done.stderr.strip()[-300:]}")
        return {"status": "error", "error": done.stderr.strip()[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args()
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan.runs = args.runs
    if args.transports:
        plan.transports = tuple(args.transports.split(","))
    if args.cases:
        plan.only = tuple(args.cases.split(","))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = datetime.now(UTC)
    workdir = Path(args.out) / "tmp" / started.strftime("%Y%m%dT%H%M%S")
    load_start = round(os.getloadavg()[0], 2)
    log(f"raised authsocket limits: {RAISED_LIMITS}")
    log(f"1-min load average before the run: {load_start}")
    skipped, stacks = {}, []
    try:
        stacks += build_stacks(args, plan, workdir, skipped)
        records = run_all(stacks, plan, args.scenarios.split(","))
    finally:
        for stack in stacks:
            stack.server.stop()
    summary = {
        "started_at": started.isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "label": None if is_complete(args) else args.label,
        "plan": asdict(plan),
        "raised_limits": RAISED_LIMITS,
        "skipped": skipped,
        "machine": report.machine_info(args.python),
        "app_commit": app_commit(Path(args.app_dir)),
        "loadavg_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "medians": medians(records),
        "records": records,
        "metrics_instructions": metrics_instructions(args),
    }
    out = Path(args.out)
    paths = report.write_all(summary, out, out.parent)  # bench/RESULTS.md by default
    log("wrote " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
