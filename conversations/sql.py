"""The one SQL runner for statements written out by hand (ingest, the applier, the writers).

Hot paths run fixed SQL text instead of building ORM queries: building an ORM query cost
more CPU than PostgreSQL took to run it. The SQL is the subset PostgreSQL and SQLite (3.35+)
share unless a caller says otherwise, with values adapted by the model fields.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
from django.db import InternalError, NotSupportedError, OperationalError, connection, models
from django.db.models import F

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


def rows_update(model: type[models.Model], rows: Sequence[tuple[int, dict[str, Any]]],
                added: tuple[str, ...] = ()) -> None:
    """Write changed columns of rows by primary key: one UPDATE per set of changed fields
    (a batch has a few such sets). `added` fields hold an amount to add to the stored
    value. On PostgreSQL `UPDATE … FROM json_to_recordset(…)` (one JSON parameter: less
    work in Python than bulk_update's CASE per row and column); elsewhere bulk_update,
    which writes the same rows."""
    groups: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for pk, values in rows:
        if values:
            groups[tuple(sorted(values))].append((pk, values))
    for fields, group in groups.items():
        _rows_update(model, list(fields), group, added)


def _rows_update(model: type[models.Model], fields: list[str],
                 rows: list[tuple[int, dict[str, Any]]], added: tuple[str, ...]) -> None:
    if connection.vendor != "postgresql":
        attnames = {f: model._meta.get_field(f).attname for f in fields}
        objs = []
        for pk, values in rows:
            obj = model(pk=pk)
            for f, value in values.items():
                setattr(obj, attnames[f], F(f) + value if f in added else value)
            objs.append(obj)
        model.objects.bulk_update(objs, fields)
        return
    columns = [model._meta.get_field(f) for f in fields]
    sets = ", ".join(
        f'"{c.column}" = t."{c.column}" + v."{c.column}"' if f in added
        else f'"{c.column}" = v."{c.column}"'
        for f, c in zip(fields, columns, strict=True)
    )
    types = ", ".join(f'"{c.column}" {c.db_type(connection)}' for c in columns)
    sql = (f'UPDATE "{model._meta.db_table}" t SET {sets} '
           f"FROM json_to_recordset(%s::json) AS v(id bigint, {types}) WHERE t.id = v.id")
    named = list(zip(fields, (c.column for c in columns), strict=True))
    payload = [{"id": pk, **{column: values[f] for f, column in named}} for pk, values in rows]
    with Statements() as sql_runner:
        sql_runner.run(sql, [orjson.dumps(payload).decode()])
