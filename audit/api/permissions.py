"""Who may call what: the pages' roles (audit.roles), answered in JSON. Unauthenticated
calls get 401 (token auth comes first, so DRF names it in WWW-Authenticate); signed-in
people without the permission get 403."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from audit.roles import FLAGS, PII, VIEW, can
from conversations.conf import auditor_settings


class _Holds(BasePermission):
    codename = VIEW
    message = "You need the auditor's view permission (a manager, qa_reviewer or viewer role)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return can(request.user, self.codename)


class CanViewAuditor(_Holds):
    codename = VIEW


class CanActOnFlags(_Holds):
    codename = FLAGS
    message = "Only managers may change a flag's status (permission audit.act_on_flags)."


class DocsAccess(BasePermission):
    """The schema and docs: signed-in callers, or anyone with API_DOCS_PUBLIC."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(auditor_settings.API_DOCS_PUBLIC or request.user.is_authenticated)


def sees_pii(request: Request) -> bool:
    return can(request.user, PII)
