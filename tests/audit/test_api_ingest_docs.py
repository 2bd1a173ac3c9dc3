"""The ingest endpoints in the served OpenAPI document (tag "Ingest"): every endpoint and
every event type is there, the document still validates, and the documented examples and
answers are what the real endpoints take and give, so the docs cannot drift from the code."""

import json

import pytest
from drf_spectacular.validation import validate_schema
from jsonschema import Draft4Validator

from channels.events import BUILDERS, event_schema
from tests.support.events import SECRET, post

pytestmark = pytest.mark.django_db

INGEST_PATHS = {"/hooks/events/", "/hooks/twilio/messages/", "/hooks/twilio/status/",
                "/hooks/otlp/v1/traces", "/hooks/email/{esp}/inbound/",
                "/hooks/email/{esp}/tracking/"}
# The examples in the order a conversation lives them (a status report names a message
# the platform reported before; lifecycle events find the conversation by its id).
STORY = ["message.created", "customer.identified", "ai.step", "message.status",
         "handoff.requested", "handoff.queued", "handoff.assigned", "handoff.returned",
         "conversation.resolved", "outcome.recorded", "conversation.closed"]


@pytest.fixture
def served(client, settings):
    """The schema as the API serves it (as tests/audit/test_api_schema.py reads it)."""
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "API_DOCS_PUBLIC": True,
                                "EVENTS_SECRETS": [SECRET]}
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def conforms(schema: dict, component: str, instance: object) -> list[str]:
    """Problems of `instance` against a component of the served schema (OpenAPI 3.0's
    schema objects are JSON Schema draft 4 plus annotations)."""
    root = {"$ref": f"#/components/schemas/{component}", "components": schema["components"]}
    return [error.message for error in Draft4Validator(root).iter_errors(instance)]


def test_every_ingest_endpoint_and_event_type_is_documented(served):
    ingest = {path for path, item in served["paths"].items()
              for operation in item.values() if "Ingest" in operation.get("tags", [])}
    assert ingest == INGEST_PATHS
    assert "Ingest" in [tag["name"] for tag in served["tags"]]
    schemas = served["components"]["schemas"]
    mapping = schemas["IngestEvent"]["discriminator"]["mapping"]
    assert set(mapping) == set(BUILDERS) == set(STORY)
    for event_type, ref in mapping.items():
        component = schemas[ref.rsplit("/", 1)[1]]
        source = event_schema(event_type)
        # The event's own schema: its type, its required fields, its data's.
        assert component["properties"]["type"] == {"type": "string", "enum": [event_type]}
        assert component["required"] == source["required"]
        assert component["properties"]["data"]["required"] == source["properties"]["data"][
            "required"]
        assert component["example"] == source["examples"][0]
    events = served["paths"]["/hooks/events/"]["post"]
    assert {p["name"] for p in events["parameters"]} == {
        "webhook-id", "webhook-timestamp", "webhook-signature"}
    assert set(events["responses"]) == {"200", "400", "403", "415", "503"}
    twilio = served["paths"]["/hooks/twilio/messages/"]["post"]
    assert [p["name"] for p in twilio["parameters"]] == ["X-Twilio-Signature"]
    otlp = served["paths"]["/hooks/otlp/v1/traces"]["post"]
    assert otlp["security"] == [{"otlpBearer": []}] and "413" in otlp["responses"]
    email = served["paths"]["/hooks/email/{esp}/inbound/"]["post"]
    assert {"postmark", "mailgun", "sendgrid"} <= set(email["parameters"][0]["schema"]["enum"])


def test_the_served_schema_still_validates(served):
    validate_schema(served)  # drf-spectacular's OpenAPI 3.0 meta-schema check


def test_each_documented_example_signed_is_accepted_by_the_real_endpoint(client, served):
    events = served["paths"]["/hooks/events/"]["post"]
    examples = events["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == set(STORY) | {"batch"}
    for index, event_type in enumerate(STORY):
        body = json.dumps(examples[event_type]["value"]).encode()
        response = post(client, body, msg_id=f"msg_docs_{index}")
        assert response.status_code == 200, (event_type, response.content)
        answer = response.json()
        assert answer["status"] == "processed", (event_type, answer)
        assert conforms(served, "IngestEventsAccepted", answer) == []
    batch = json.dumps(examples["batch"]["value"]).encode()
    answer = post(client, batch, msg_id="msg_docs_batch").json()
    assert len(answer["raw_events"]) == 2 and answer["status"] == "processed"


def test_refusals_have_the_documented_shapes(client, served):
    bad = {"type": "handoff.requested", "id": "x",
           "data": {"conversation": {"channel": "web", "external_id": "c"},
                    "requested_by": "robot"}}
    refused = post(client, json.dumps([bad]).encode(), msg_id="msg_bad")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_events"
    assert conforms(served, "IngestEventsRefused", refused.json()) == []
    assert refused.json()["problems"][0]["path"] == "data.requested_by"
    unsigned = client.post("/hooks/events/", b"{}", content_type="application/json")
    assert unsigned.status_code == 403
    assert conforms(served, "IngestError", unsigned.json()) == []
    documented = served["paths"]["/hooks/events/"]["post"]["responses"]
    for status in ("400", "403", "415", "503"):
        example = documented[status]["content"]["application/json"]["example"]
        assert conforms(served, "IngestEventsRefused" if status == "400" else "IngestError",
                        example) == [], status


def test_the_documented_twilio_examples_signed_are_accepted(twilio, twilio_tokens, served):
    documented = {kind: served["paths"][f"/hooks/twilio/{kind}/"]["post"]
                  for kind in ("messages", "status")}
    form = "application/x-www-form-urlencoded"
    incoming = twilio.message(documented["messages"]["requestBody"]["content"][form]["example"])
    assert incoming.status_code == 200
    twiml = documented["messages"]["responses"]["200"]["content"]["text/xml"]["example"]
    assert incoming.content.decode() == twiml
    status = twilio.status(documented["status"]["requestBody"]["content"][form]["example"])
    assert status.status_code == 200
    unsigned = twilio.client.post("/hooks/twilio/status/", "MessageSid=SM1",
                                  content_type=form)
    assert unsigned.status_code == 403
    assert conforms(served, "IngestError", unsigned.json()) == []
