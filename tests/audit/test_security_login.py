"""Issue 13, sign-in throttling (django-axes) through the real sign-in forms: after N failed
sign-ins for one username from one address that pair is refused (even with the right
password) until the cool-off passes or an admin resets it; other users and other addresses
are unaffected; the site's and the admin's sign-in share the count; behind the proxy the
address is the one the proxy appended, and X-Forwarded-For is ignored without one."""

import base64
import datetime as dt
import json
import os

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.audit.test_security_production import run

pytestmark = pytest.mark.django_db

LOGIN, ADMIN_LOGIN = "/accounts/login/", "/admin/login/"
PASSWORD = "correct horse battery"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password=PASSWORD, is_staff=True)


def sign_in(client: Client, username: str, password: str, path: str = LOGIN, **extra):
    return client.post(path, {"username": username, "password": password}, **extra)


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.wsgi_request.session


def fail(client: Client, times: int, username: str = "alice", path: str = LOGIN, **extra):
    return [sign_in(client, username, "wrong", path, **extra) for _ in range(times)]


def test_n_failures_lock_the_pair_even_against_the_right_password(alice, settings):
    limit = settings.AXES_FAILURE_LIMIT
    client = Client()
    before = fail(client, limit - 1)
    assert [r.status_code for r in before] == [200] * (limit - 1)  # the form, with its error
    assert "Please try again" in before[-1].content.decode()
    locked = sign_in(client, "alice", "wrong")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many sign-in attempts" in page and f"failed {limit} times" in page
    assert "15\xa0minutes" in page  # timesince joins with a no-break space
    refused = sign_in(client, "alice", PASSWORD)
    assert refused.status_code == 429 and not signed_in(refused)
    # The admin's sign-in is the same lock: same username, same address.
    assert sign_in(Client(), "alice", PASSWORD, ADMIN_LOGIN).status_code == 429


def test_the_lock_lifts_after_the_cool_off(alice, settings):
    fail(Client(), settings.AXES_FAILURE_LIMIT)
    assert sign_in(Client(), "alice", PASSWORD).status_code == 429
    later = timezone.now() + settings.AXES_COOLOFF_TIME + dt.timedelta(seconds=5)
    with time_machine.travel(later, tick=False):
        assert signed_in(sign_in(Client(), "alice", PASSWORD))
        # A success clears the count: the next failure is one, not N + 1.
        assert fail(Client(), 1)[0].status_code == 200


def test_an_admin_reset_lets_the_user_in_at_once(alice, settings):
    fail(Client(), settings.AXES_FAILURE_LIMIT)
    assert sign_in(Client(), "alice", PASSWORD).status_code == 429
    call_command("axes_reset_username", "alice", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert signed_in(sign_in(Client(), "alice", PASSWORD))


def test_other_users_and_other_addresses_are_unaffected(alice, settings):
    User.objects.create_user("bob", password=PASSWORD)
    fail(Client(), settings.AXES_FAILURE_LIMIT)
    assert sign_in(Client(), "alice", PASSWORD).status_code == 429
    assert signed_in(sign_in(Client(), "bob", PASSWORD))  # same address, other user
    assert signed_in(sign_in(Client(), "alice", PASSWORD, REMOTE_ADDR="198.51.100.7"))


def test_failures_on_the_admin_sign_in_lock_the_site_sign_in_too(alice, settings):
    fail(Client(), settings.AXES_FAILURE_LIMIT, path=ADMIN_LOGIN)
    assert sign_in(Client(), "alice", PASSWORD, ADMIN_LOGIN).status_code == 429
    assert sign_in(Client(), "alice", PASSWORD).status_code == 429


def test_without_a_proxy_x_forwarded_for_cannot_buy_a_fresh_address(alice, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), "alice", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    assert sign_in(Client(), "alice", PASSWORD,
                   HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


def test_behind_the_proxy_the_address_it_appended_counts(alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}  # every request comes from the proxy's socket
    for i in range(settings.AXES_FAILURE_LIMIT):
        # Whatever the client writes itself sits left of what the proxy appended.
        sign_in(Client(), "alice", "wrong", **proxy,
                HTTP_X_FORWARDED_FOR=f"198.18.0.{i}, 203.0.113.5")
    assert sign_in(Client(), "alice", PASSWORD, **proxy,
                   HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.5").status_code == 429
    # Another client behind the same proxy is another address.
    assert signed_in(sign_in(Client(), "alice", PASSWORD, **proxy,
                             HTTP_X_FORWARDED_FOR="203.0.113.6"))


def test_a_script_gets_the_lockout_as_json(alice, settings):
    fail(Client(), settings.AXES_FAILURE_LIMIT)
    answer = sign_in(Client(), "alice", PASSWORD, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert answer.status_code == 429 and answer["Content-Type"] == "application/json"
    assert json.loads(answer.content)["failure_limit"] == settings.AXES_FAILURE_LIMIT


def test_the_api_takes_no_password_so_nothing_unthrottled_guesses_one(alice):
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    answer = Client().get("/api/conversations/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert answer.status_code in (401, 403)


def test_the_limit_and_cool_off_come_from_the_environment(tmp_path):
    probe = ("import json, django; from django.conf import settings; django.setup(); "
             "print(json.dumps([settings.AXES_FAILURE_LIMIT, "
             "settings.AXES_COOLOFF_TIME.total_seconds(), settings.TRUSTED_PROXY_COUNT]))")
    out = run(["-c", probe], HANDOFF_AUDITOR_DATA_DIR=str(tmp_path), DJANGO_DEBUG="1",
              DJANGO_LOGIN_FAILURE_LIMIT="3", DJANGO_LOGIN_COOLOFF_MINUTES="2",
              DJANGO_BEHIND_TLS_PROXY="1")
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [3, 120.0, 1], out.stderr
