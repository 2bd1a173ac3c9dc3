"""`manage.py check --deploy`: the plugin's own settings that make a deployment unsafe.
Silent when each webhook has a real secret and the public URL is https."""

import base64
import binascii
from typing import Any

from anymail.utils import get_anymail_setting
from django.core.checks import Tags, Warning, register

from conversations.conf import auditor_settings

# The local-only events secret bin/run sets for `make run` (README's curl example).
DEMO_EVENTS_SECRET = "whsec_ZGVtby1zZWNyZXQtZm9yLWxvY2FsLXVzZS1vbmx5"
MIN_SECRET_BYTES = 24


def _secret_bytes(secret: str) -> int:
    try:
        return len(base64.b64decode(secret.removeprefix("whsec_"), validate=True))
    except (binascii.Error, ValueError):
        return 0


@register(Tags.security, deploy=True)
def plugin_settings_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    out: list[Warning] = []
    secrets = auditor_settings.EVENTS_SECRETS
    if DEMO_EVENTS_SECRET in secrets:
        out.append(Warning(
            "HANDOFF_AUDITOR['EVENTS_SECRETS'] holds the local-only demo secret of `make run`: "
            "anyone who read the README can post events.",
            hint="Generate one: python -c \"import base64,os; "
                 "print('whsec_'+base64.b64encode(os.urandom(32)).decode())\"",
            id="handoff_auditor.W001"))
    elif any(_secret_bytes(s) < MIN_SECRET_BYTES for s in secrets):
        out.append(Warning(
            f"An events secret is not whsec_ + base64 of at least {MIN_SECRET_BYTES} bytes.",
            hint="Standard Webhooks secrets are whsec_ followed by 24-64 random bytes, base64.",
            id="handoff_auditor.W002"))
    if any(len(token) < 32 for token in auditor_settings.TWILIO_AUTH_TOKENS):
        out.append(Warning(
            "A Twilio auth token is shorter than Twilio's 32 characters: a placeholder?",
            hint="Set TWILIO_AUTH_TOKEN to the account's auth token (Twilio console).",
            id="handoff_auditor.W003"))
    base = auditor_settings.PUBLIC_BASE_URL
    if base and not base.startswith("https://"):
        out.append(Warning(
            f"HANDOFF_AUDITOR['PUBLIC_BASE_URL'] is {base!r}: webhooks (signatures, message "
            "bodies) and sign-ins would travel unencrypted.",
            hint="Serve over TLS and give the https:// URL.", id="handoff_auditor.W004"))
    shared = get_anymail_setting("webhook_secret", default=[])
    if shared:
        out.append(Warning(
            "ANYMAIL['WEBHOOK_SECRET'] is one basic-auth secret for every e-mail ESP's "
            "routes: whoever holds one ESP's credentials can post as any other.",
            hint="Give each ESP its own: ANYMAIL_WEBHOOK_SECRET_<ESP> (HANDOFF_AUDITOR"
                 "['EMAIL_WEBHOOK_SECRETS']), then unset ANYMAIL_WEBHOOK_SECRET.",
            id="handoff_auditor.W006"))
    if auditor_settings.API_DOCS_PUBLIC:
        out.append(Warning(
            "HANDOFF_AUDITOR['API_DOCS_PUBLIC'] is on: anyone can read the API's schema.",
            id="handoff_auditor.W005"))
    return out
