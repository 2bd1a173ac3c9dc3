"""People in the audit roles: a user per role, a signed-in Client per role, an API token per
role."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from audit.roles import roles_ensure


def user_in(role: str | None, name: str) -> User:
    roles_ensure()
    user, created = User.objects.get_or_create(username=name)
    if role and created:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def as_role():
    def client_for(role: str | None) -> Client:
        c = Client()
        c.force_login(user_in(role, f"user-{role or 'none'}"))
        return c
    return client_for


def token_for(role: str | None) -> str:
    roles_ensure()
    user, created = User.objects.get_or_create(username=f"api-{role or 'none'}")
    if role and created:
        user.groups.add(Group.objects.get(name=role))
    out = StringIO()
    call_command("issue_api_token", user.username, stdout=out)
    return out.getvalue().strip()
