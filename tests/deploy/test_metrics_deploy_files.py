"""deploy/prometheus and deploy/grafana name only metrics that exist."""

import json
import re

import yaml
from prometheus_client import REGISTRY

from core import metrics  # noqa: F401 - registers every metric

from .processes import ROOT

NAME = re.compile(r"\bauthsocket_[a-z_]+")


def exposed_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("authsocket_"):
            names.add(family.name)
            for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
                names.add(family.name + suffix)
    return names


def test_prometheus_scrapes_each_process_with_the_token_from_a_file():
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"].startswith("/etc/")
    targets = job["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"]


def test_dashboard_and_alerts_use_only_metrics_that_exist():
    dashboard = json.loads((ROOT / "deploy/grafana/authsocket.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    alerts = yaml.safe_load(
        (ROOT / "deploy/prometheus/authsocket-alerts.yml").read_text()
    )
    exprs += [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used, "no authsocket metric referenced"
    assert used <= exposed_names(), used - exposed_names()
    titles = {p["title"] for p in dashboard["panels"]}
    for first_look in ("Open sockets", "Close codes sent", "Revocation poll lag"):
        assert first_look in titles
