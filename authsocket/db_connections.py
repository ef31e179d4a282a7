"""Close an HTTP request's database connections when the request ends.

Django keeps a connection open for `CONN_MAX_AGE` seconds so that the next
request on the same thread reuses it. Under ASGI no later request ever sees
it: each request runs in a context of its own, and its connection is
reachable only from there. When the request ends the connection is dropped
unclosed, and only the garbage collector closes it — rarely, with the tuning
of authsocket/gc_tuning.py: a hundred API calls left some fifty PostgreSQL
connections open in one process, until `max_connections` refused every new
one (500 on every request, on every process sharing the server).

So when Django's ASGI handler finishes a request, that request's connections
are closed. The long-lived threads (`database_sync_to_async`'s, the session
guard's) keep theirs: those are reused, as docs/deploy.md budgets.
"""

from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished
from django.db import connections


def _close_request_connections(sender, **kwargs) -> None:
    """`request_finished` receiver; runs in the finished request's context."""
    if not (isinstance(sender, type) and issubclass(sender, ASGIHandler)):
        return  # the test client: its requests share the test's connection
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def close_connections_after_requests() -> None:
    """Install the receiver (once; called where the ASGI application is built)."""
    request_finished.connect(
        _close_request_connections, dispatch_uid="authsocket-close-request-db"
    )
