"""Every page of the seeded demo, as each role: it opens (or is refused with 403), and no
template prints a Python dict or list repr (`{'`, `[{`) where words belong."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.support.pages import every_page

REPRS = ("{'", "[{", "&#x27;:", "{&#x27;", "[{&#x27;")


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=StringIO(), stderr=StringIO())
    call_command("ensure_demo_user", stdout=StringIO())


def test_no_page_of_the_demo_prints_a_dict_or_list_repr(demo, client):
    paths = every_page()
    assert len([p for p in paths if p.startswith("/conversations/")]) >= 20
    users = get_user_model().objects
    reprs = []
    for username in ("demo", "demo-qa", "demo-viewer"):
        client.force_login(users.get(username=username))
        opened = 0
        for path in paths:
            response = client.get(path)
            # The admin sends people who are not staff to its own sign-in page.
            refused = 302 if path.startswith("/admin/") else 403
            assert response.status_code in (200, refused), (username, path, response.status_code)
            if response.status_code == refused:
                continue
            opened += 1
            body = response.content.decode()
            for r in REPRS:
                if r in body:
                    where = body.find(r)
                    reprs.append((username, path, body[max(0, where - 150):where + 150]))
        assert opened >= len(paths) // 2, username
        client.logout()
    assert not reprs, reprs
