"""hypothesis-jsonschema 0.23 (used by schemathesis 3.x) on a newer Hypothesis.

hypothesis-jsonschema drives Hypothesis' private `many()` with its old
`while elements.more():` API, which Hypothesis 6.15x+ replaced with a
context-manager iterator; every object schema then fails with "'many' object
has no attribute 'more'". `patch()` gives hypothesis-jsonschema (only) an
adapter over the new API. A no-op where `many().more` exists. The durable fix
is a hypothesis pin in requirements-dev.txt (see docs/reliability.md).
"""

import types

from hypothesis.internal.conjecture import utils as cu


class LegacyMany:
    """`more()`/`reject()` on top of the iterator form of `many()`."""

    def __init__(self, *args, **kwargs):
        self._many = cu.many(*args, **kwargs)
        self._elements = None

    def more(self) -> bool:
        if self._elements is None:
            self._many.__enter__()
            self._elements = iter(self._many)
        try:
            next(self._elements)
        except StopIteration:
            self._many.__exit__(None, None, None)
            return False
        return True

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


def patch() -> None:
    from hypothesis_jsonschema import _from_schema

    if hasattr(cu.many, "more") or isinstance(_from_schema.cu, types.SimpleNamespace):
        return
    proxy = types.SimpleNamespace(**vars(cu))
    proxy.many = LegacyMany
    _from_schema.cu = proxy
