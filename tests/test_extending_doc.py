"""docs/extending.md shows the consumer and the routing that the tests run."""

import re
import sys
import types
from pathlib import Path

import pytest
from django.db.models.signals import m2m_changed, post_save

from realtime import kinds

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


# --- "Say when rights may have changed": the receivers as the guide shows them ----

RIGHTS_SECTION = GUIDE.split("### 2. Say when rights may have changed", 1)[1].split(
    "\n### ", 1
)[0]


class _Through:
    """Stands for `Document.collaborators.through` of the guide's `documents` app."""


class _Document:
    """Stands for the guide's `documents.models.Document` (its code is the reader's)."""

    collaborators = types.SimpleNamespace(through=_Through)

    def __init__(self, pk: int) -> None:
        self.pk = pk


@pytest.fixture
def guide_receivers(monkeypatch):
    """The section's python block, run as the reader's `documents/signals.py`.

    `rights_changed` records its calls instead of sending: what is checked is
    which streams the guide's receivers name, not realtime's delivery (tested
    with real sockets in realtime/tests/test_kinds.py).
    """
    calls = []
    models = types.ModuleType("documents.models")
    models.Document = _Document
    monkeypatch.setitem(sys.modules, "documents", types.ModuleType("documents"))
    monkeypatch.setitem(sys.modules, "documents.models", models)
    monkeypatch.setattr(kinds, "rights_changed", lambda **call: calls.append(call))
    (code,) = re.findall(r"```python\n(.*?)```", RIGHTS_SECTION, re.DOTALL)
    namespace: dict = {}
    exec(compile(code, "docs/extending.md", "exec"), namespace)  # noqa: S102
    yield namespace, calls
    m2m_changed.disconnect(namespace["collaborators_changed"], sender=_Through)
    post_save.disconnect(namespace["document_saved"], sender=_Document)


def rechecked(calls: list[dict]) -> set[str]:
    return {
        name
        for call in calls
        for name in [call.get("stream"), *call.get("streams", ())]
        if name
    }


def test_the_guides_receiver_rechecks_a_document_its_collaborator_left(guide_receivers):
    """`document.collaborators.remove(user)`: the document is `instance`."""
    namespace, calls = guide_receivers
    namespace["collaborators_changed"](
        sender=_Through,
        instance=_Document(42),
        action="post_remove",
        reverse=False,
        model=object,
        pk_set={7},
    )
    assert rechecked(calls) == {"doc:42"}


def test_the_guides_receiver_rechecks_the_document_on_a_reverse_removal(
    guide_receivers,
):
    """`user.document_set.remove(document)` sends the same signal with the
    USER as `instance` and the documents in `pk_set`: re-checking
    `doc:<user id>` would leave the removed user reading document 42."""
    namespace, calls = guide_receivers
    user = types.SimpleNamespace(pk=7)
    namespace["collaborators_changed"](
        sender=_Through,
        instance=user,
        action="post_remove",
        reverse=True,
        model=_Document,
        pk_set={42},
    )
    assert rechecked(calls) == {"doc:42"}


def test_the_guides_receiver_rechecks_every_document_of_a_reverse_clear(
    guide_receivers,
):
    """`user.document_set.clear()`: no `pk_set`; the documents are read from
    the user before the rows go (`pre_clear`)."""
    namespace, calls = guide_receivers
    user = types.SimpleNamespace(
        pk=7, document_set=types.SimpleNamespace(values_list=lambda *_, **__: [42, 43])
    )
    for action in ("pre_clear", "post_clear"):
        namespace["collaborators_changed"](
            sender=_Through,
            instance=user,
            action=action,
            reverse=True,
            model=_Document,
            pk_set=None,
        )
    assert rechecked(calls) == {"doc:42", "doc:43"}
    assert {call.get("user_id") for call in calls} == {7}
