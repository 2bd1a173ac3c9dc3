"""The inbox's keyset pages: a page cursor is the sort key of its last row, encoded for a
URL; the next page is the rows strictly after it in the page's order (no OFFSET, so page
500 costs what page 1 does). Used by the inbox page, its API and the CSV export."""

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from django.db.models import F
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan

from conversations.models import Conversation

SORTS = ("recent", "severity")


class BadCursor(ValueError):
    """A page cursor that was not made by this code (edited or truncated)."""


def cursor_encode(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BIGINT = 2**63  # columns are 64-bit; SQLite cannot even bind a larger Python int


def cursor_int(value: Any) -> int:
    """An integer a cursor may hold: a JSON integer that fits a 64-bit column."""
    if type(value) is not int or not -BIGINT <= value < BIGINT:
        raise ValueError("not a 64-bit integer")
    return value


def cursor_datetime(value: datetime) -> datetime:
    """A moment a cursor may hold: with its zone, and one that UTC can hold (the year-1
    and year-9999 edges overflow when the database driver converts them)."""
    if value.utcoffset() is None:
        raise ValueError("no time zone")
    return value.astimezone(UTC).astimezone(value.tzinfo)


def cursor_decode(cursor: str, sort: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        expected = 3 if sort == "severity" else 2
        if not isinstance(values, list) or len(values) != expected:
            raise ValueError("shape")
        values[-2] = cursor_datetime(datetime.fromisoformat(values[-2]))
        values[-1] = cursor_int(values[-1])
        if sort == "severity":
            values[0] = cursor_int(values[0])
        return values
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError) as exc:
        raise BadCursor("this page link is not valid any more; start from the first page") \
            from exc


def cursor_after(values: list[Any], sort: str) -> TupleLessThan:
    """Rows strictly after a cursor in the page order (keyset: no OFFSET). A row comparison,
    `(rank, last_activity_at, id) < (...)`, which PostgreSQL turns into an index condition
    on the sort's index (an OR of columns would scan from the top and discard)."""
    columns = ["last_activity_at", "id"]
    if sort == "severity":
        columns = ["open_flag_rank", *columns]
    return TupleLessThan(Tuple(*[F(c) for c in columns]), tuple(values))


def cursor_of(conversation: Conversation, sort: str) -> str:
    key = [conversation.last_activity_at.isoformat(), conversation.pk]
    return cursor_encode([conversation.open_flag_rank, *key] if sort == "severity" else key)
