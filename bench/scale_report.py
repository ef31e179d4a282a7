"""Issue 21's figures: targets, the curves as tables and as a PNG.

The scale cases return one point per level (`points`); with several runs
each level's figure is the median of the runs. Targets are judged here.
"""

import statistics
from pathlib import Path

SUBJECT = "authsocket"
CURVE, MEMORY, REDIS, CLUSTER = (
    "scale/curve",
    "scale/fanout-memory",
    "scale/fanout-redis",
    "scale/cluster",
)
HANDSHAKE_FLOOR = 0.9  # at the most sockets against none
REVOCATION_ONE_MS = 100
REVOCATION_CLUSTER_MS = 300
REDIS_FANOUT_MS = 250
REDIS_FANOUT_AT = 1000


def results(summary: dict, case: str) -> list[dict]:
    return [
        r["result"]
        for r in summary["records"]
        if r["server"] == SUBJECT
        and r["case"] == case
        and r["result"].get("status") == "ok"
    ]


def case_loads(summary: dict, case: str) -> list[float]:
    return [
        r.get("loadavg_1m", 0.0)
        for r in summary["records"]
        if r["server"] == SUBJECT and r["case"] == case
    ]


def curve(summary: dict, case: str) -> dict[int, dict]:
    """sockets → figure → median over the runs, for one scale case."""
    by_level: dict[int, list[dict]] = {}
    for result in results(summary, case):
        for point in result.get("points", []):
            by_level.setdefault(point["sockets"], []).append(point)
    out = {}
    for level, points in sorted(by_level.items()):
        keys = {k for p in points for k, v in p.items() if _number(v)}
        out[level] = {
            k: statistics.median(p[k] for p in points if _number(p.get(k)))
            for k in keys
        }
    return out


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def median_of(summary: dict, case: str, key: str):
    values = [r[key] for r in results(summary, case) if _number(r.get(key))]
    return statistics.median(values) if values else None


def cell(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.{digits}f}"
    return f"{int(value):,}"


def verdict(passed) -> str:
    return {True: "**pass**", False: "**FAIL**", None: "not measured"}[passed]


def at_most(value, limit, failures=0) -> bool | None:
    if value is None:
        return None
    return value <= limit and not failures


def targets(summary: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, passed) per issue 21 target this family measures."""
    points = curve(summary, CURVE)
    levels = sorted(points)
    top = levels[-1] if levels else None
    rows = []
    if top:
        rates = run_ratios(summary, top, "connections_per_s", False)
        cpus = run_ratios(summary, top, "server_cpu_ms_per_handshake", True)
        rate, cpu = statistics.median(rates), statistics.median(cpus)
        rows.append(
            (
                f"handshakes/s with {top:,} open ≥ {HANDSHAKE_FLOOR}× with none",
                f"{rate:.2f}× (median of the runs' ratios: "
                f"{', '.join(f'{r:.2f}' for r in rates)}); by server CPU per "
                f"handshake {cpu:.2f}× ({', '.join(f'{r:.2f}' for r in cpus)})",
                rate >= HANDSHAKE_FLOOR,
            )
        )
    p99 = median_of(summary, CURVE, "revocation_p99_ms")
    errors = median_of(summary, CURVE, "revocation_errors") or 0
    among = median_of(summary, CURVE, "revocation_among")
    samples = median_of(summary, CURVE, "revocation_samples")
    rows.append(
        (
            f"revoking one session among {cell(among)} open → close p99 "
            f"≤ {REVOCATION_ONE_MS} ms, one process",
            f"{cell(p99)} ms, median of the runs' p99 ({each(summary, CURVE)}); "
            f"{cell(samples)} samples a run, {cell(errors)} failed",
            at_most(p99, REVOCATION_ONE_MS, errors),
        )
    )
    redis = curve(summary, REDIS)
    at = REDIS_FANOUT_AT if REDIS_FANOUT_AT in redis else max(redis, default=None)
    last = redis.get(at, {}).get("last_p99_ms") if at else None
    missing = redis.get(at, {}).get("missing_deliveries", 0) if at else 0
    rows.append(
        (
            f"fan-out through Redis to {cell(at)} subscribers: last p99 "
            f"≤ {REDIS_FANOUT_MS} ms",
            f"{cell(last)} ms, median of the runs' ({each(summary, REDIS, 'last_p99_ms')})"
            + (f", {cell(missing)} missed" if missing else ""),
            at_most(last, REDIS_FANOUT_MS, missing),
        )
    )
    cluster_p99 = median_of(summary, CLUSTER, "revocation_p99_ms")
    cluster_errors = median_of(summary, CLUSTER, "revocation_errors") or 0
    rows.append(
        (
            f"revocation across processes behind nginx p99 ≤ {REVOCATION_CLUSTER_MS} ms",
            f"{cell(cluster_p99)} ms, median of the runs' p99 "
            f"({each(summary, CLUSTER)}); "
            f"{cell(median_of(summary, CLUSTER, 'revocation_samples'))} "
            f"samples a run, {cell(cluster_errors)} failed",
            at_most(cluster_p99, REVOCATION_CLUSTER_MS, cluster_errors),
        )
    )
    return rows


def each(summary: dict, case: str, key: str = "revocation_p99_ms") -> str:
    """Every run's figure, in run order: one slow run stays visible."""
    return ", ".join(cell(r.get(key)) for r in results(summary, case))


def run_ratios(summary: dict, level: int, key: str, inverse: bool) -> list[float]:
    """Each run's figure at `level` against its own at none open (above 1 is
    better: for CPU per handshake, none over level)."""
    ratios = []
    for result in results(summary, CURVE):
        by_level = {p["sockets"]: p for p in result["points"]}
        if level not in by_level or 0 not in by_level:
            continue
        at, base = by_level[level][key], by_level[0][key]
        ratios.append(base / at if inverse else at / base)
    return ratios


def curve_table(summary: dict) -> list[str]:
    points, memory, redis = (
        curve(summary, CURVE),
        curve(summary, MEMORY),
        curve(summary, REDIS),
    )
    base = points.get(0, {}).get("connections_per_s")
    lines = [
        "| open sockets | handshakes/s | × none open | server CPU ms/handshake "
        "| of which GC ms | handshake p99 ms | server CPU idle | server RSS MiB "
        "| KiB per socket | subscribes/s | fan-out in memory: last p50 / p99 ms "
        "| any delivery p99 ms | server CPU µs/delivery | load generator busy "
        "| fan-out via Redis: last p50 / p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in sorted(set(points) | set(memory) | set(redis)):
        p, m, r = points.get(level, {}), memory.get(level, {}), redis.get(level, {})
        rate = p.get("connections_per_s")
        times = f"{rate / base:.2f}×" if rate and base else "–"
        rss = p.get("rss_kib")
        lines.append(
            f"| {level:,} | {cell(rate)} | {times} "
            f"| {cell(p.get('server_cpu_ms_per_handshake'), 2)} "
            f"| {cell(p.get('gc_ms_per_handshake'), 3)} "
            f"| {cell(p.get('handshake_p99_ms'))} "
            f"| {percent(p.get('idle_cpu_share'))} "
            f"| {cell(rss / 1024 if rss else None)} "
            f"| {cell(p.get('kib_per_socket'))} "
            f"| {cell(m.get('subscribes_per_s'))} "
            f"| {pair(m, 'last_p50_ms', 'last_p99_ms')} "
            f"| {cell(m.get('delivery_p99_ms'))} "
            f"| {cell(m.get('server_cpu_us_per_delivery'))} "
            f"| {percent(m.get('loadgen_cpu_share'))} "
            f"| {pair(r, 'last_p50_ms', 'last_p99_ms')} |"
        )
    again = [r["after_close"] for r in results(summary, CURVE) if "after_close" in r]
    if again:
        rate = statistics.median(a["connections_per_s"] for a in again)
        cpu = statistics.median(a["server_cpu_ms_per_handshake"] for a in again)
        p99 = statistics.median(a["handshake_p99_ms"] for a in again)
        times = f"{rate / base:.2f}×" if base else "–"
        lines.append(
            f"| 0, after all closed | {cell(rate)} | {times} | {cell(cpu, 2)} | "
            f"| {cell(p99)} |" + " |" * 9
        )
    return lines


def percent(share) -> str:
    return "–" if share is None else f"{share:.0%}"


def pair(point: dict, a: str, b: str) -> str:
    if a not in point and b not in point:
        return "–"
    return f"{cell(point.get(a))} / {cell(point.get(b))}"


def redis_rows(summary: dict) -> list[str]:
    """Redis commands per operation at each level of the Redis fan-out."""
    redis = {
        k: v for k, v in curve(summary, REDIS).items() if "redis_cmds_per_publish" in v
    }
    if not redis:
        return []
    lines = [
        "| Redis commands (INFO commandstats, one process; `room:lobby` keeps "
        "presence, not asked for) "
        "| per handshake | per subscribe | per publish |",
        "|---|---:|---:|---:|",
    ]
    for level, p in redis.items():
        lines.append(
            f"| with {level:,} subscribers | {cell(p['redis_cmds_per_handshake'], 2)} "
            f"| {cell(p['redis_cmds_per_subscribe'], 2)} "
            f"| {cell(p['redis_cmds_per_publish'])} |"
        )
    return [*lines, ""]


def memory_rows(summary: dict) -> list[str]:
    if not results(summary, CURVE):
        return []
    get = lambda key: median_of(summary, CURVE, key)  # noqa: E731
    mib = lambda key: cell(get(key) / 1024 if get(key) else None)  # noqa: E731
    top = max(curve(summary, CURVE), default=0)
    return [
        f"| Server memory around {top:,} sockets | MiB |",
        "|---|---:|",
        f"| RSS before the first socket (warmed up) | {mib('rss_before_kib')} |",
        f"| high-water RSS (VmHWM) | {mib('rss_high_water_kib')} |",
        f"| RSS once all {top:,} have closed | {mib('rss_after_close_kib')} |",
        f"| … after a full `gc.collect()` | {mib('rss_after_gc_kib')} |",
        f"| … then glibc `malloc_trim(0)` | {mib('rss_after_trim_kib')} |",
    ]


def cluster_rows(summary: dict) -> list[str]:
    found = results(summary, CLUSTER)
    if not found:
        reasons = [
            r["result"].get("reason") or r["result"].get("error")
            for r in summary["records"]
            if r["case"] == CLUSTER
        ]
        return [f"Not measured: {reasons[-1] if reasons else 'not run'}."]
    get = lambda key: median_of(summary, CLUSTER, key)  # noqa: E731
    spreads = "; ".join(" / ".join(cell(n) for n in r.get("spread", [])) for r in found)
    return [
        "| Three `authsocket.serve` processes behind nginx, Redis, PostgreSQL | |",
        "|---|---:|",
        f"| sockets opened through nginx | {cell(get('sockets'))} |",
        f"| opened per second (handshakes through nginx) | {cell(get('open_per_s'))} |",
        f"| open sockets per process (`authsocket_open_sockets`), each run | {spreads} |",
        f"| smallest process's share | {cell(get('spread_min_share'), 3)} |",
        f"| one publish to all: any delivery p50 / p99 ms | "
        f"{cell(get('delivery_p50_ms'))} / {cell(get('delivery_p99_ms'))} |",
        f"| one publish to all: last delivery p50 / p99 ms | "
        f"{cell(get('last_p50_ms'))} / {cell(get('last_p99_ms'))} |",
        f"| deliveries missed | {cell(get('missing_deliveries'))} |",
        f"| revocation across processes p50 / p99 ms (from the logout request) | "
        f"{cell(get('revocation_p50_ms'))} / {cell(get('revocation_p99_ms'))} |",
        f"| revocation samples, failed | {cell(get('revocation_samples'))}, "
        f"{cell(get('revocation_errors'))} |",
    ]


def section(summary: dict, chart_link: str | None) -> list[str]:
    """The Markdown of the scale family, or nothing when it did not run."""
    if not any(r["case"].startswith("scale/") for r in summary["records"]):
        return []
    loads = ", ".join(
        f"`{case}` {max(case_loads(summary, case), default=0):.2f}"
        for case in (CURVE, MEMORY, REDIS, CLUSTER)
    )
    lines = [
        "## Scale (issue 21)",
        "",
        "One `authsocket.serve` process (core 0, in-memory layer unless said) "
        "holding N authenticated idle sockets, one user each, all opened by "
        "one load-generator process (core 1). At each N: a batch of `?token=` "
        "handshakes (median of the batch rounds), the server's RSS, and, on a "
        "fresh process with every socket subscribed to `room:lobby`, one "
        "publish to all of them. Sizes: "
        f"`{summary['plan'].get('scale')}`. 1-min load average at the start "
        f"of each case (2 cores): {loads}.",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *(f"| {n} | {m} | {verdict(p)} |" for n, m, p in targets(summary)),
        "",
        *curve_table(summary),
        "",
    ]
    if chart_link:
        lines += [f"![scale curves]({chart_link})", ""]
    lines += [
        *redis_rows(summary),
        *memory_rows(summary),
        "",
        *cluster_rows(summary),
        "",
    ]
    return lines


def has_curves(summary: dict) -> bool:
    return bool(curve(summary, CURVE) or curve(summary, MEMORY))


def chart(summary: dict, path: Path) -> None:
    """Handshakes/s, fan-out delay, KiB per socket and RSS against sockets open."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, memory, redis = (
        curve(summary, CURVE),
        curve(summary, MEMORY),
        curve(summary, REDIS),
    )
    held = {k: v for k, v in points.items() if k}
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    ax = axes[0][0]
    ax.plot(list(held), [p["connections_per_s"] for p in held.values()], "o-")
    if 0 in points:
        base = points[0]["connections_per_s"]
        ax.axhline(base, color="grey", ls="--", label="none open")
        ax.axhline(base * HANDSHAKE_FLOOR, color="red", ls=":", label="target floor")
    ax.set_title("handshakes/s while N sockets are open (higher is better)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower left")
    cpu = ax.twinx()
    cpu.plot(
        list(points),
        [p["server_cpu_ms_per_handshake"] for p in points.values()],
        "s--",
        color="C3",
    )
    cpu.set_ylabel("server CPU ms per handshake (squares)", color="C3")
    cpu.set_ylim(bottom=0)
    ax = axes[0][1]
    for data, label in ((memory, "in-memory layer"), (redis, "Redis layer")):
        if data:
            ax.plot(
                list(data),
                [p["last_p99_ms"] for p in data.values()],
                "o-",
                label=f"{label}, last p99",
            )
            ax.plot(
                list(data),
                [p["last_p50_ms"] for p in data.values()],
                "o--",
                label=f"{label}, last p50",
            )
    ax.axhline(REDIS_FANOUT_MS, color="red", ls=":", label="Redis target at 1,000")
    ax.set_title("fan-out: publish → last of N subscribers, ms (lower is better)")
    ax.legend()
    ax = axes[1][0]
    ax.plot(list(held), [p["kib_per_socket"] for p in held.values()], "o-")
    ax.set_title("server RSS growth per idle socket, KiB (lower is better)")
    ax.set_ylim(bottom=0)
    ax = axes[1][1]
    ax.plot(list(points), [p["rss_kib"] / 1024 for p in points.values()], "o-")
    ax.set_title("server RSS, MiB")
    ax.set_ylim(bottom=0)
    for ax in (a for row in axes for a in row):
        ax.set_xlim(left=0)
        ax.set_xlabel("open sockets (N)")
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"authsocket {summary.get('app_commit')}: one process, 0 to "
        f"{max(points, default=0):,} sockets, {summary['started_at']} "
        f"({summary['mode']})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
