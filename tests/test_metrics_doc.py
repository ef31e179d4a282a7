"""docs/metrics.md's table of metrics is the registry's: same names, types, labels.

Operators write queries and alerts from that table: a metric renamed, a
label added or a type changed in core/metrics.py must show there, and no row
may name a series that does not exist.
"""

import re
from pathlib import Path

from prometheus_client import REGISTRY

from core import metrics

DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
ROW = re.compile(r"^\| `authsocket_[^|]*\|")
NAME = re.compile(r"`(authsocket_[a-z_]+)`")
LABEL_NAME = re.compile(r"\s*`([a-z_]+)`\s*")


def documented() -> dict[str, tuple[str, set[str]]]:
    """name (without `_total`) → (type, label names), from "## The metrics"."""
    section = DOC.read_text().split("## The metrics", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if ROW.match(line):
            names, kind, labels = (cell.strip() for cell in line.split("|")[1:4])
            for name in NAME.findall(names):
                rows[name.removesuffix("_total")] = (kind, label_names(labels))
    return rows


def label_names(cell: str) -> set[str]:
    """`outcome` (`accepted`, …), `reason`, … → {"outcome", "reason", …}:
    each name outside the parentheses that list its values."""
    outside, depth = "", 0
    for char in cell:
        depth += (char == "(") - (char == ")")
        if depth == 0 and char != ")":
            outside += char
    return {
        match.group(1)
        for part in outside.split(",")
        if (match := LABEL_NAME.fullmatch(part))
    }


def test_every_metric_is_documented_with_its_type_and_labels():
    ours = {
        value._name: value
        for value in vars(metrics).values()
        if getattr(value, "_name", "").startswith("authsocket_")
    }
    types = {family.name: family.type for family in REGISTRY.collect()}
    docs = documented()
    assert set(docs) == set(ours), set(docs) ^ set(ours)
    for name, (kind, labels) in docs.items():
        assert kind == types[name], name
        assert labels == set(ours[name]._labelnames), name
