"""docs/extending.md shows the consumer and the routing that the tests run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "extending.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE, re.DOTALL)


def test_the_guides_consumer_is_the_tested_one():
    tested = (ROOT / "tests" / "apps" / "cursors" / "consumers.py").read_text()
    assert tested in PYTHON_BLOCKS


def test_the_guides_route_is_the_tested_one():
    tested = (ROOT / "tests" / "apps" / "cursors" / "routing.py").read_text()
    route = re.search(r"re_path\(.*\)", tested).group(0)
    routing_block = next(b for b in PYTHON_BLOCKS if "websocket_routes(" in b)
    assert route in routing_block
