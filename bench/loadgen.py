"""Load generator process: runs one scenario, prints one JSON line.

    python -m bench.loadgen '{"scenario": "echo", "tokens_file": "tokens.txt",
                              "ws_url": "ws://127.0.0.1:8000/ws/", "params": {}}'

It runs in its own process (pinned by the runner to another core than the
server) and reports its own CPU time next to the wall time, so a result
where the load generator was the limit can be told apart from one where the
server was.
"""

import asyncio
import json
import resource
import sys
import time

from bench.client import Target
from bench.presence_scenarios import SCENARIOS as PRESENCE_SCENARIOS
from bench.scale_scenarios import SCENARIOS as SCALE_SCENARIOS
from bench.scenarios import SCENARIOS

SCENARIOS = {**SCENARIOS, **PRESENCE_SCENARIOS, **SCALE_SCENARIOS}

# Above this share of one core, the load generator may be what limits a
# throughput figure rather than the server.
LOADGEN_BOUND_SHARE = 0.85


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_fd_limit() -> None:
    """Thousands of sockets need more descriptors than a shell's soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def read_tokens(path: str | None) -> list[str]:
    if not path:
        return []
    with open(path) as lines:
        return [line.strip() for line in lines if line.strip()]


async def run(spec: dict) -> dict:
    """Runs the scenario in `spec` and wraps its result with CPU accounting."""
    target = Target(spec["ws_url"], spec.get("origin"))
    params = dict(spec.get("params", {}))
    if "logout_ws_url" in params:
        params["logout_target"] = Target(params.pop("logout_ws_url"))
    tokens = read_tokens(spec.get("tokens_file"))
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    result = await SCENARIOS[spec["scenario"]](target, tokens, **params)
    cpu, wall = cpu_seconds() - cpu_start, time.perf_counter() - wall_start
    share = cpu / wall if wall else 0.0
    return {
        "status": "ok",
        **result,
        "loadgen_cpu_s": round(cpu, 3),
        "loadgen_wall_s": round(wall, 3),
        "loadgen_cpu_share": round(share, 3),
        "loadgen_bound": share > LOADGEN_BOUND_SHARE,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    raise_fd_limit()
    try:
        import uvloop  # the faster loop keeps the client off the critical path
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        result = runner(run(spec))
    except Exception as exc:  # one JSON line whatever happens
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:500]}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
