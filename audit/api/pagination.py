"""Keyset pagination only (no OFFSET, so a late page costs what the first does): opaque
`cursor` links in `next`, `page_size` from 1 to 200. A cursor that was not made here is a
400, not a 404 or a 500."""

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from audit.inbox_filters import InboxFilters
from audit.keyset import BadCursor, cursor_datetime, cursor_int
from audit.roles import PII, can
from audit.selectors import InboxPage, inbox_page

PAGE_SIZE, MAX_PAGE_SIZE = 50, 200
BAD_CURSOR = "this page link is not valid any more; start from the first page"


def page_size_of(request: Request, default: int = PAGE_SIZE) -> int:
    raw = request.query_params.get("page_size", "")
    if raw == "":
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationError({"page_size": [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]})
    return size


def _page_size_parameter() -> dict[str, Any]:
    return {
        "name": "page_size", "required": False, "in": "query",
        "description": f"Rows per page (default {PAGE_SIZE}).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
    }


def _cursor_parameter() -> dict[str, Any]:
    return {"name": "cursor", "required": False, "in": "query",
            "description": "The page to read: from the previous page's `next` link.",
            "schema": {"type": "string"}}


class KeysetPagination(CursorPagination):
    """DRF's cursor pagination over the view's `ordering`, strict about its inputs."""

    page_size = PAGE_SIZE
    ordering = ("-id",)

    def get_page_size(self, request: Request) -> int:
        return page_size_of(request)

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        return tuple(getattr(view, "ordering", None) or self.ordering)

    def paginate_queryset(self, queryset: QuerySet, request: Request,
                          view: Any = None) -> list[Any] | None:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Any:
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                self._position_check(cursor.position)
            return cursor
        except Exception as exc:  # DRF answers a bad cursor with 404; it is a bad input
            raise ValidationError({"cursor": [BAD_CURSOR]}) from exc

    def _position_check(self, position: str) -> None:
        """DRF filters on the cursor's position as it is: it must be a value of the first
        ordering column (a date that is not one, or an id over 64 bits, is a 500 there)."""
        field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        value = field.to_python(position)
        if "\x00" in position:
            raise ValueError("NUL")
        if isinstance(value, datetime):
            cursor_datetime(value)
        elif isinstance(value, int):
            cursor_int(value)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [_cursor_parameter(), _page_size_parameter()]


class InboxPagination(BasePagination):
    """The inbox's own keyset pages (audit.selectors.inbox_page), by recency or severity."""

    def paginate(self, request: Request, *, filters: InboxFilters, sort: str) -> InboxPage:
        self.request = request
        try:
            self.page = inbox_page(filters=filters, sort=sort,
                                   cursor=request.query_params.get("cursor", ""),
                                   size=page_size_of(request),
                                   masked=not can(request.user, PII),
                                   reader=request.user)
        except BadCursor as exc:
            raise ValidationError({"cursor": [str(exc)]}) from exc
        return self.page

    def get_next_link(self) -> str | None:
        if not self.page.next_cursor:
            return None
        return replace_query_param(self.request.build_absolute_uri(), "cursor",
                                   self.page.next_cursor)

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.get_next_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object", "required": ["next", "results"],
            "properties": {
                "next": {"type": "string", "format": "uri", "nullable": True},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [_cursor_parameter(), _page_size_parameter()]
