"""schemathesis against the published OpenAPI schema, in process (WSGI), as a manager:
every operation gets schema-valid requests (with ids that exist and ids that don't) and
schema-invalid ones; none may answer 5xx, and every answer must be one the schema declares,
with the declared content type and a body that matches its schema."""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as examples_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alerts.models import Alert
from alerts.rules import rule_save
from alerts.services import alerts_evaluate_flags
from audit.qa_models import ReviewQueue
from audit.qa_queues import queue_fill
from audit.rollups import rollups_refresh
from config.wsgi import application
from conversations.models import Conversation, Flag, Message
from demo.scenarios import scenario_get
from handoffs.models import Handoff
from scoring.models import Review
from scoring.qa import review_draft_save, scorecard_default_ensure
from scoring.services import brand_voice_default, messages_score
from tests.support.roles import token_for
from tests.support.scenarios import play

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Requests per operation: schema-valid ones (half of them on ids that exist) and invalid ones.
POSITIVE, NEGATIVE = 30, 15
EXPECTED_OPERATIONS = {
    "GET /api/conversations/", "GET /api/conversations/{id}/", "GET /api/messages/",
    "GET /api/handoffs/", "GET /api/handoffs/{id}/", "GET /api/flags/", "GET /api/flags/{id}/",
    "POST /api/flags/{id}/status/", "POST /api/flags/{id}/triage/",
    "GET /api/scores/", "GET /api/metrics/handoffs/", "GET /api/metrics/quality/",
    "GET /api/access-log/",
    "GET /api/qa/queues/", "GET /api/qa/queues/{id}/", "POST /api/qa/queues/{id}/take-next/",
    "GET /api/qa/reviews/", "POST /api/qa/reviews/", "GET /api/qa/reviews/{id}/",
    "GET /api/alerts/", "GET /api/alerts/{id}/", "POST /api/alerts/{id}/action/",
    "GET /api/alert-rules/", "POST /api/alert-rules/", "GET /api/alert-rules/{id}/",
    "PUT /api/alert-rules/{id}/", "PATCH /api/alert-rules/{id}/",
    "GET /api/brands/{id}/examples/", "POST /api/brands/{id}/examples/",
    "GET /api/brands/{id}/calibration/", "POST /api/brands/{id}/calibration/",
    "GET /api/reports/outcomes/", "GET /api/reports/groups/", "GET /api/reports/compare/",
    "GET /api/reports/qa/",
}


@contextmanager
def wsgi_keeps_the_test_connection() -> Iterator[None]:
    """The WSGI handler closes the database connection when a request ends; inside a test
    transaction it must not (Django's test client disconnects the same receiver, and
    connects it again after each of its requests)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(client, settings):
    for key in ("whatsapp-window-expired", "web-missed-request", "sms-ai-kept-talking"):
        play(client, settings, scenario_get(key))
    messages_score(message_ids=list(Message.objects.values_list("pk", flat=True)))
    rollups_refresh()  # the report endpoints read the daily rollups
    version = scorecard_default_ensure()
    queue = ReviewQueue.objects.create(name="all web", scorecard=version.scorecard,
                                       channel_percent={"web": 100, "sms": 100}, double_percent=50)
    queue_fill(queue=queue)
    review_draft_save(reviewer=User.objects.create_user("someone"),
                      conversation=Conversation.objects.first(), version=version,
                      answers={"greeting": True})
    rule = rule_save(data={"name": "dropped", "kind": "flag", "flag_kinds": ["handoff_dropped"]},
                     by="manager")
    alerts_evaluate_flags()
    brand = brand_voice_default()
    existing = {
        "/api/brands/{id}/examples/": [brand.pk],
        "/api/brands/{id}/calibration/": [brand.pk],
        "/api/alerts/{id}/": Alert.objects.values_list("pk", flat=True),
        "/api/alerts/{id}/action/": Alert.objects.values_list("pk", flat=True),
        "/api/alert-rules/{id}/": [rule.pk],
        "/api/qa/queues/{id}/": [queue.pk],
        "/api/qa/queues/{id}/take-next/": [queue.pk],
        "/api/qa/reviews/{id}/": Review.objects.values_list("pk", flat=True),
        "/api/conversations/{id}/": Conversation.objects.values_list("pk", flat=True),
        "/api/handoffs/{id}/": Handoff.objects.values_list("pk", flat=True),
        "/api/flags/{id}/": Flag.objects.values_list("pk", flat=True),
        "/api/flags/{id}/status/": Flag.objects.values_list("pk", flat=True),
        "/api/flags/{id}/triage/": Flag.objects.values_list("pk", flat=True),
    }
    headers = {"Authorization": f"Token {token_for('manager')}"}
    # schemathesis reads the schema without signing in.
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "API_DOCS_PUBLIC": True}
    sent: Counter[tuple[str, str]] = Counter()
    statuses: Counter[int] = Counter()
    with wsgi_keeps_the_test_connection():
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
        # The ingest endpoints (tag "Ingest") take their senders' signatures, not API
        # tokens: tests/audit/test_api_ingest_docs.py posts their documented examples, signed.
        operations = [op for op in (result.ok() for result in schema.get_all_operations())
                      if "Ingest" not in (op.tags or [])]
        assert {op.label for op in operations} == EXPECTED_OPERATIONS
        for operation in operations:
            ids = list(existing.get(operation.path, []))
            for mode, examples in ((GenerationMode.POSITIVE, POSITIVE),
                                   (GenerationMode.NEGATIVE, NEGATIVE)):
                exercise(operation, mode, examples, ids, headers, sent, statuses)

    print(f"\nschemathesis: {len(operations)} operations, {sum(sent.values())} requests "
          f"({dict(sorted(statuses.items()))} by status)")
    for label in EXPECTED_OPERATIONS:
        assert sent[(label, "positive")] >= 10, (label, sent)
    assert statuses[200] > 0 and not any(code >= 500 for code in statuses)


def exercise(operation, mode: GenerationMode, examples: int, ids: list[int], headers: dict,
             sent: Counter, statuses: Counter) -> None:
    """`examples` requests for one operation; schema-valid ones go to an id that exists
    every other time."""
    key = (operation.label, mode.value)

    @given(case=operation.as_strategy(generation_mode=mode),
           real=st.sampled_from(ids) if ids else st.none())
    @examples_settings(max_examples=examples, deadline=None, database=None,
                       derandomize=True, suppress_health_check=list(HealthCheck))
    def run(case, real) -> None:
        if real is not None and mode is GenerationMode.POSITIVE and sent[key] % 2 == 0:
            case.path_parameters = {**(case.path_parameters or {}), "id": real}
        response = case.call(headers=headers)
        sent[key] += 1
        statuses[response.status_code] += 1
        checks = CHECKS if mode is GenerationMode.POSITIVE else [not_a_server_error]
        case.validate_response(response, checks=checks, headers=headers)

    run()
