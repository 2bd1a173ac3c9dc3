"""The access log (issue 16): who opened raw events or unmasked personal data.

One writer, `access_record`, called by every surface that shows raw events or unmasked
PII (the replay and customer pages, the raw events page, the API's conversation detail
and message list, the CSV exports) and, through the `admin_record_viewed` signal, by the
admin's record pages. One reader, `access_entries`, for the manager-only page and the API.
Entries are only added (audit.access_models.AccessEntry)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from ipaddress import ip_address
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string

from conversations.conf import auditor_settings

from .access_models import AccessEntry
from .roles import PII, can

Kind = AccessEntry.Kind


def client_ip(request: HttpRequest) -> str | None:
    """The client's address per HANDOFF_AUDITOR["CLIENT_IP"] (else REMOTE_ADDR); None when
    it is not an IP address."""
    path = auditor_settings.CLIENT_IP
    raw = import_string(path)(request) if path else request.META.get("REMOTE_ADDR", "")
    try:
        return str(ip_address((raw or "").strip()))
    except ValueError:
        return None


def access_record(*, request: HttpRequest, kind: str, what: str,
                  conversation_ids: Iterable[int | None] = (), objects_label: str = "",
                  ) -> list[AccessEntry]:
    """Write the entries for one access: one per conversation opened (or one with none).
    Anonymous requests are never logged (they are refused before anything is shown)."""
    user = request.user
    if not user.is_authenticated:
        return []
    now = timezone.now()
    ids = list(dict.fromkeys(conversation_ids)) or [None]
    base = {"at": now, "user": user, "username": user.get_username(), "kind": kind,
            "what": what[:64], "objects_label": objects_label[:255], "ip": client_ip(request),
            "path": request.get_full_path()[:500]}
    return AccessEntry.objects.bulk_create(
        [AccessEntry(conversation_id=cid, **base) for cid in ids])


def pii_viewed(*, request: HttpRequest, what: str, conversation_ids: Iterable[int | None] = (),
               objects_label: str = "") -> None:
    """Log an unmasked view, only when the reader may see PII (others see it masked)."""
    if can(request.user, PII):
        access_record(request=request, kind=Kind.PII, what=what,
                      conversation_ids=conversation_ids, objects_label=objects_label)


def admin_record_viewed(sender: Any, request: HttpRequest, object_id: str,
                        conversation_id: int | None = None, **_: Any) -> None:
    """Receiver of conversations.signals.admin_record_viewed (AuditConfig.ready)."""
    access_record(request=request, kind=Kind.ADMIN, what=sender._meta.verbose_name,
                  conversation_ids=[conversation_id],
                  objects_label=f"{sender._meta.label_lower}:{object_id}")


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessFilters:
    user: str = ""  # a username
    kind: str = ""
    since: date | None = None
    until: date | None = None  # inclusive
    conversation: int | None = None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def access_entries(*, filters: AccessFilters) -> QuerySet[AccessEntry]:
    """The entries matching the filters, newest first (dates are days in the site's time
    zone, `until` inclusive)."""
    qs = AccessEntry.objects.all()
    if filters.user:
        qs = qs.filter(username=filters.user)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.since:
        qs = qs.filter(at__gte=_day_start(filters.since))
    if filters.until:
        qs = qs.filter(at__lt=_day_start(filters.until + timedelta(days=1)))
    if filters.conversation:
        qs = qs.filter(conversation_id=filters.conversation)
    return qs.order_by("-at", "-id")


_VERBS = {
    Kind.RAW_EVENTS: "opened the raw events of",
    Kind.PII: "saw the personal data unmasked in",
    Kind.EXPORT: "exported with personal data",
    Kind.ADMIN: "opened in the admin",
}


def access_sentence(entry: AccessEntry) -> str:
    """'ana opened the raw events of conversation #123', in the reader's words."""
    who = entry.username or "someone"
    if entry.kind == Kind.EXPORT:
        return f"{who} exported {entry.what} with personal data ({entry.objects_label})" \
            if entry.objects_label else f"{who} exported {entry.what} with personal data"
    if entry.kind == Kind.ADMIN:
        thing = f"the {entry.what} record {entry.objects_label.rsplit(':', 1)[-1]}"
        of = f" of conversation #{entry.conversation_id}" if entry.conversation_id else ""
        return f"{who} opened {thing}{of} in the admin"
    target = f"conversation #{entry.conversation_id}" if entry.conversation_id \
        else entry.objects_label or "a page"
    where = f" ({entry.what})" if entry.what and entry.kind == Kind.PII else ""
    return f"{who} {_VERBS.get(entry.kind, 'opened')} {target}{where}"
