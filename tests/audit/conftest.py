"""Fixtures the audit tests share: a signed-in Client per role, the headless browser."""

from tests.support.browser import browser  # noqa: F401 (a fixture)
from tests.support.roles import as_role  # noqa: F401 (a fixture)
