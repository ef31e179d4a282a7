"""docs/extending.md's step-by-step section shows the example's files as they are."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "extending.md").read_text()
HEADING = "## Add a live feature to your project, step by step"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
PATH = re.compile(r"`(examples/[\w/]+\.py)`")


def shown_files() -> dict[str, str]:
    """Each python block, keyed by the last example file its prose names."""
    steps = GUIDE.split(HEADING, 1)[1]
    shown, prose_start = {}, 0
    for block in BLOCK.finditer(steps):
        named = PATH.findall(steps[prose_start : block.start()])
        assert named, f"no examples/ file named before:\n{block.group(1)[:200]}"
        shown[named[-1]] = block.group(1)
        prose_start = block.end()
    return shown


def example_files() -> list[str]:
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "examples").rglob("*.py")
        if path.name != "__init__.py" and "migrations" not in path.parts
    )


def test_the_guide_has_its_step_by_step_section():
    assert HEADING in GUIDE


def test_every_file_of_the_example_is_in_the_guide():
    assert sorted(shown_files()) == example_files()


def test_the_guide_shows_each_file_as_it_is():
    for path, code in shown_files().items():
        assert code == (ROOT / path).read_text(), f"{path} differs from the guide"
