"""Issue 13, item 10: an e-mail subject over 50,000 characters, for a customer with an open
thread, made SQLite refuse the thread look-up ("LIKE or GLOB pattern too complex"): the
message was never recorded. Threads compare the subject as stored (998 characters, the
RFC 5322 line limit), so it is recorded, and the same long subject threads again."""

from datetime import timedelta

import pytest

from conversations.models import Conversation, Message, RawEvent
from tests.support.email import T0, email_settings, mail, postmark  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]


def test_a_subject_over_50000_characters_is_recorded_and_threads(client):
    subject = "Where is my parcel " + "x" * 60_000
    assert postmark(client, mail(msg_id="<a@customer.test>", subject="Hello",
                                 text="first")).status_code == 200
    for n in (1, 2):
        reply = mail(msg_id=f"<long{n}@customer.test>", subject=subject, text=f"long {n}",
                     at=T0 + timedelta(minutes=n))
        assert postmark(client, reply).status_code == 200
    assert not RawEvent.objects.exclude(status=RawEvent.Status.PROCESSED).exists(), \
        list(RawEvent.objects.values_list("error", flat=True))
    assert Message.objects.count() == 3
    long = Conversation.objects.get(subject__startswith="Where is my parcel")
    assert long.message_count == 2 and len(long.subject) == 998
