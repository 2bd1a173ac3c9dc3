"""The triage trail of flags, as pages and the API read and change it: who may own a flag,
each flag's trail (hidden where the blind double-review rule hides who set a status), and
the one form/serializer-independent change (`triage_apply`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from conversations.flags import UNSET, flag_update
from conversations.models import Flag, FlagEvent

from .qa_selectors import flag_set_by_other_review, is_blind
from .roles import ANNOTATE, APP, FLAGS, can

User = get_user_model()


def flag_owners() -> QuerySet:
    """Who a flag can be assigned to: active users who may act on flags."""
    perm = Q(groups__permissions__codename=FLAGS, groups__permissions__content_type__app_label=APP)
    direct = Q(user_permissions__codename=FLAGS,
               user_permissions__content_type__app_label=APP)
    return (User.objects.filter(is_active=True).filter(Q(is_superuser=True) | perm | direct)
            .distinct().order_by(User.USERNAME_FIELD))


def flag_trails(*, user: Any, flags: Iterable[Flag]) -> dict[int, list[FlagEvent]]:
    """Each flag's trail, oldest first. Empty for a flag whose status another reviewer's
    review set while `user` is still blind to that conversation (read from the database,
    so it holds whether or not the flags were masked in memory already)."""
    ids = [f.pk for f in flags]
    if not ids:
        return {}
    hidden: set[int] = set()
    if can(user, ANNOTATE):
        blind: dict[int, bool] = {}
        for stored in Flag.objects.filter(pk__in=ids).only(
                "pk", "status", "note", "status_changed_by", "conversation_id"):
            if flag_set_by_other_review(flag=stored, user=user):
                cid = stored.conversation_id
                if cid not in blind:
                    blind[cid] = is_blind(user=user, conversation=cid)
                if blind[cid]:
                    hidden.add(stored.pk)
    trails: dict[int, list[FlagEvent]] = {pk: [] for pk in ids}
    for event in FlagEvent.objects.filter(flag_id__in=[i for i in ids if i not in hidden]) \
            .order_by("at", "id"):
        trails[event.flag_id].append(event)
    return trails


class TriageError(ValueError):
    """A triage request that names an owner who cannot own flags."""


def triage_apply(*, flag: Flag, by: Any, data: dict[str, Any]) -> Flag:
    """Apply a validated triage request: keys present are changed (status, note, owner as
    a username or "" to unassign, due_on as a date or None, ticket_url)."""
    owner: Any = UNSET
    if "owner" in data:
        name = data["owner"] or ""
        owner = None
        if name:
            owner = flag_owners().filter(**{User.USERNAME_FIELD: name}).first()
            if owner is None:
                raise TriageError(f"{name!r} cannot own flags (unknown, inactive, or not "
                                  "allowed to act on flags)")
    due: date | None | Any = data["due_on"] if "due_on" in data else UNSET
    return flag_update(flag=flag, by=by.get_username(), status=data.get("status") or None,
                       note=data.get("note") or "", owner=owner, due_on=due,
                       ticket_url=data["ticket_url"] if "ticket_url" in data else UNSET)
