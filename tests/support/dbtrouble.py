"""Database trouble made real, for the tests that check it is answered 503 (not mocked)."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def conversations_locked() -> Iterator[None]:
    """While inside: another session holds conversations_conversation exclusively, and
    ours gives up waiting for a lock after 200 ms (PostgreSQL: lock timeout, an
    OperationalError), as under a long migration or a stuck transaction. Needs a
    transactional test (django_db(transaction=True)): the server side must commit."""
    if connection.vendor != "postgresql":
        raise RuntimeError("make test runs on PostgreSQL")
    db = connection.settings_dict
    blocker = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                              dbname=db["NAME"])
    try:
        blocker.execute("LOCK TABLE conversations_conversation IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        yield
    finally:
        blocker.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
