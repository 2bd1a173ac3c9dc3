import pytest

from tests.support.plugin_host import host, migrated_host  # noqa: F401 (fixtures)
from tests.support.twilio import TOKEN, TwilioClient


@pytest.fixture(autouse=True)
def applier_inline(settings):
    """Webhooks only store; most tests look at the rows right after a webhook answers, so
    the applier runs in the test's process right after each store (APPLIER_WAKE "inline",
    the same applier a Celery task runs). Tests of waking and draining set it back."""
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "APPLIER_WAKE": "inline"}


@pytest.fixture(autouse=True)
def twilio_tokens(settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "TWILIO_AUTH_TOKENS": [TOKEN],
                                "PUBLIC_BASE_URL": ""}


@pytest.fixture
def twilio(client) -> TwilioClient:
    return TwilioClient(client)


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a failure: every test here must run (browser tests included)."""
    import os

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and session.exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped: not allowed in CI", red=True)
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def scoring_not_queued_on_record(settings):
    """Tests record messages everywhere; queueing a scoring task for each would leave them
    on the shared Redis queue for any later worker to run against another test's database.
    Tests of the scoring worker path turn it back on."""
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "SCORING_ON_RECORD": False}
