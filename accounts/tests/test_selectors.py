"""The reads every process repeats: they must stay cheap as sessions pile up."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.selectors import sessions_used_since

pytestmark = pytest.mark.django_db

RECENT_USE_INDEX = "authsession_recent_use"


def test_the_guards_poll_reads_recent_sessions_through_their_index(alice, open_session):
    """The session guard asks twice a second on every process: a range of an
    index over recent use, not a scan of every unrevoked session."""
    open_session(alice)
    executed = []

    def capture(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        found = sessions_used_since(timezone.now() - timedelta(minutes=1), limit=10)
    assert [s.user_id for s in found] == [alice.pk]
    [(sql, params)] = executed
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(
            cursor, "accounts_authsession"
        )
        assert constraints[RECENT_USE_INDEX]["columns"] == [
            "revoked_at",
            "last_used_at",
        ]
        # It serves filters on revoked_at alone too: no second index for them.
        assert not [
            name
            for name, c in constraints.items()
            if c["index"] and c["columns"] == ["revoked_at"]
        ]
        if connection.vendor == "sqlite":  # PostgreSQL scans a table this small
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert f"USING INDEX {RECENT_USE_INDEX}" in plan, plan
