"""The one SQL runner for statements written out by hand (ingest, the applier, the writers).

Hot paths run fixed SQL text instead of building ORM queries: building an ORM query cost
more CPU than PostgreSQL took to run it. The SQL is the subset PostgreSQL and SQLite (3.35+)
share unless a caller says otherwise, with values adapted by the model fields.
"""

from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import InternalError, NotSupportedError, OperationalError, connection, models

# Errors of the database itself (connection lost, lock or statement timeout, deadlock, a
# prepared plan invalidated by a migration): they say nothing about the payload, so a
# webhook answers 503 and the provider retries, and the applier leaves its batch pending.
TRANSIENT_DATABASE_ERRORS = (OperationalError, InternalError, NotSupportedError)


class Statements:
    """Runs SQL on the default connection, inside the caller's transaction.

    On PostgreSQL the statements go through a psycopg cursor with server-side binding, so
    each is prepared once per connection where the host allows prepared statements (see
    DB_PREPARED_STATEMENTS in config/settings.py): planning the message lookup took four
    times as long as running it. Errors surface as Django's database exceptions, as they
    would through the ORM.
    """

    def __init__(self) -> None:
        self._cursor: Any
        self.postgres = connection.vendor == "postgresql"
        if self.postgres:
            # What connection.cursor() does first (open, or health-check a reused
            # connection), without building a Django cursor we would not use.
            connection.close_if_health_check_failed()
            connection.ensure_connection()
            self._cursor = psycopg.Cursor(connection.connection)
        else:
            self._cursor = connection.cursor()

    def __enter__(self) -> "Statements":
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()

    def run(self, sql: str, params: Sequence[Any]) -> None:
        with connection.wrap_database_errors:
            if self.postgres:
                self._cursor.execute(sql, params, prepare=True)
            else:
                self._cursor.execute(sql, params)

    def one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row the statement returns, or None."""
        self.run(sql, params)
        with connection.wrap_database_errors:
            return self._cursor.fetchone()

    def all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row the statement returns."""
        self.run(sql, params)
        with connection.wrap_database_errors:
            return self._cursor.fetchall()


def db_value(model: type[models.Model], name: str, value: Any) -> Any:
    """`value` as the field would send it to this database (JSON, time zone handling)."""
    return model._meta.get_field(name).get_db_prep_save(value, connection)
