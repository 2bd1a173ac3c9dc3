"""The REST API (DRF): conversations with their journey, messages, handoffs, flags and
handoff metrics, behind token or session auth and the same roles and masking as the pages.
The OpenAPI 3 schema is at api/schema/, browsable docs at api/docs/ and api/redoc/."""
