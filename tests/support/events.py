"""POST /hooks/events/ as the tests sign it: the path, the test secret, a signed post."""

import base64

from tests.support.signing import events_headers

PATH = "/hooks/events/"
SECRET = "whsec_" + base64.b64encode(b"handoff-auditor-test-secret-0001").decode()


def post(client, body: bytes, *, msg_id="msg_2Kx9", secret=SECRET, timestamp=None,
         content_type="application/json", headers=None):
    signed = events_headers(body, secret, msg_id=msg_id, timestamp=timestamp)
    return client.post(PATH, body, content_type=content_type, headers=headers or signed)
