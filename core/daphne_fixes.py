"""Fixing one of daphne's classes in the process that runs daphne, once.

Plain ``daphne`` and ``python -m authsocket.serve`` both load daphne before
the application, and both call each fix (authsocket/asgi.py, serve.py).
Nothing is imported here: importing daphne's server installs Twisted's
reactor, which tests and other servers must not get. So a fix asks for its
class only if daphne is loaded already, and marks the method it replaced, so
that a second call changes nothing.
"""

import sys

_FIXED = "authsocket_fixed"


def daphne_class_to_fix(module: str, name: str, method: str) -> type | None:
    """daphne's class `name` of `module`; None when daphne does not run this
    process, or when its `method` was fixed already."""
    loaded = sys.modules.get(module)
    if loaded is None:
        return None
    cls = getattr(loaded, name)
    return None if getattr(getattr(cls, method), _FIXED, False) else cls


def fixed(function):
    """Mark `function`, the replacement of a daphne method (see above)."""
    setattr(function, _FIXED, True)
    return function
