"""Database trouble made real, for the tests that check it is answered 503 (not mocked)."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


def conversations_locked():  # noqa: ANN201 - a context manager
    """Conversations cannot be written: what the applier needs, not what a webhook needs."""
    return table_locked("conversations_conversation")


def raw_events_locked():  # noqa: ANN201 - a context manager
    """Raw events cannot be stored: what a webhook needs (storage trouble)."""
    return table_locked("conversations_rawevent")


@contextmanager
def table_locked(table: str) -> Iterator[None]:
    """While inside: another session holds `table` exclusively, and ours gives up waiting
    for a lock after 200 ms (PostgreSQL: lock timeout, an OperationalError), as under a
    long migration or a stuck transaction. Needs a transactional test
    (django_db(transaction=True)): the server side must commit."""
    if connection.vendor != "postgresql":
        raise RuntimeError("make test runs on PostgreSQL")
    db = connection.settings_dict
    blocker = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                              dbname=db["NAME"])
    try:
        blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        yield
    finally:
        blocker.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


@contextmanager
def database_down() -> Iterator[None]:
    """While inside: the database does not answer (our connection points at a closed port),
    as when PostgreSQL is down or restarting. Needs a transactional test."""
    connection.close()
    saved = {k: connection.settings_dict[k] for k in ("HOST", "PORT")}
    connection.settings_dict.update(HOST="127.0.0.1", PORT="9")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)
