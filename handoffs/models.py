# The handoff state machine, SLA policies and business hours arrive with issue 4.
