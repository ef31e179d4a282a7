"""Django code in processes of their own, to force an order between database sessions.

A `Script` is `manage.py shell -c <code>` with its own connection: it can hold
a transaction open until the test releases it (a line on its stdin), while
another session is seen waiting for it in `pg_stat_activity`. Every wait is
bounded. PostgreSQL only (the tests that use it need `tests.services`).
"""

import contextlib
import queue
import subprocess
import threading

import psycopg
import pytest

from tests.reliability.services import wait_until
from tests.servers import PROJECT, PYTHON, manage, server_env
from tests.services import postgres_database

DEADLINE = 60.0


class Script:
    """`manage.py shell -c <code>` in a process (and database session) of its own."""

    def __init__(self, env: dict[str, str], code: str) -> None:
        self.process = subprocess.Popen(
            [PYTHON, "manage.py", "shell", "--no-imports", "-c", code],
            cwd=PROJECT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    def line(self) -> str:
        """The next line it prints (bounded); fails with its stderr if it exits."""
        line = self._lines.get(timeout=DEADLINE)
        if line is None:
            self.process.wait(DEADLINE)
            raise AssertionError(f"script exited early:\n{self.process.stderr.read()}")
        return line

    def release(self) -> None:
        """Let a script waiting on its stdin go on (e.g. commit)."""
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def finish(self) -> None:
        _, err = self.process.communicate(timeout=DEADLINE)
        assert self.process.returncode == 0, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(DEADLINE)


@contextlib.contextmanager
def migrated_database(*commands: tuple[str, ...]):
    """A fresh PostgreSQL database, migrated, then each `manage.py` command
    of `commands` run on it: (env, dsn)."""
    with postgres_database() as url:
        env = server_env(url)
        manage(env, "migrate", "--noinput")
        for command in commands:
            manage(env, *command)
        yield env, url


@contextlib.contextmanager
def scripts_started():
    """`start(env, code)`, a running `Script`; those still running at the
    end are killed."""
    started: list[Script] = []

    def start(env: dict[str, str], code: str) -> Script:
        started.append(Script(env, code))
        return started[-1]

    try:
        yield start
    finally:
        for script in started:
            script.kill()


@pytest.fixture(scope="module")
def database():
    """A migrated PostgreSQL database for a module's scripts: (env, dsn).

    A plugin of the root conftest; a module that needs more in it (demo
    data, a service key) defines its own.
    """
    with migrated_database() as env_and_dsn:
        yield env_and_dsn


@pytest.fixture
def scripts(database):
    """`scripts(code)`: a running `Script` on `database`."""
    env, _ = database
    with scripts_started() as start:
        yield lambda code: start(env, code)


def blocked_on_a_lock(dsn: str) -> None:
    """Wait until a session of this database waits on a lock (another process's)."""

    def waiting() -> bool:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return (
                conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()[0]
                > 0
            )

    wait_until(waiting, DEADLINE, "a session blocked on a lock")


def stream_rows(dsn: str, stream: str) -> tuple[list[int], int | None]:
    """(ids stored, counter) of `stream`, as a session of its own sees them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = [
            seq
            for (seq,) in conn.execute(
                "SELECT seq FROM realtime_message WHERE stream = %s ORDER BY seq",
                (stream,),
            )
        ]
        counter = conn.execute(
            "SELECT last_message_id FROM realtime_streamcounter WHERE stream = %s",
            (stream,),
        ).fetchone()
    return ids, None if counter is None else counter[0]
