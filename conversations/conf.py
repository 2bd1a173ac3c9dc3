"""The plugin's settings: one namespaced dict, `settings.HANDOFF_AUDITOR`, with defaults.

Read values through `auditor_settings.NAME`; unknown names raise AttributeError so typos
surface. The cache is dropped when tests override the setting.
"""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Twilio auth tokens that may sign webhooks. Several are accepted so a token can be
    # rotated without dropping webhooks: add the new one, switch Twilio, remove the old one.
    "TWILIO_AUTH_TOKENS": [],
    # The scheme://host[:port][/prefix] Twilio calls, when a proxy or tunnel sits in front of
    # Django. Twilio signs the URL it called; without this the URL Django sees is used.
    "PUBLIC_BASE_URL": "",
    # Raw-event headers worth keeping for audit, by provider (case-insensitive).
    "RAW_EVENT_HEADERS": [
        "Content-Type",
        "User-Agent",
        "X-Twilio-Signature",
        "X-Twilio-Webhooks-Signature-Settings",
        "I-Twilio-Idempotency-Token",
        "X-Forwarded-For",
    ],
}


class AuditorSettings:
    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Unknown HANDOFF_AUDITOR setting: {name}")
        if name not in self._cache:
            user = getattr(settings, "HANDOFF_AUDITOR", {}) or {}
            self._cache[name] = user.get(name, DEFAULTS[name])
        return self._cache[name]

    def reload(self) -> None:
        self._cache.clear()


auditor_settings = AuditorSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "HANDOFF_AUDITOR":
        auditor_settings.reload()


setting_changed.connect(_reload)
