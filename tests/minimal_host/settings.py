"""Host settings: the README's "Add to an existing Django project" section, verbatim, plus
the least any Django project needs. Nothing here comes from this repository's config/.

The database file comes from MINIMAL_HOST_DB (tests/test_plugin_install.py sets it).
"""

import os

SECRET_KEY = "minimal-host-for-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["support.example.com"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Handoff Auditor
    "conversations",
    "channels.apps.ChannelsConfig",   # label "auditor_channels"
    "handoffs",
    "scoring",
    "alerts",
    "audit",
    # The REST API (README, "REST API")
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.minimal_host.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["MINIMAL_HOST_DB"],
    }
}

USE_TZ = True
STATIC_URL = "static/"

HANDOFF_AUDITOR = {
    "TWILIO_AUTH_TOKENS": os.environ["TWILIO_AUTH_TOKEN"].split(","),
    "PUBLIC_BASE_URL": "https://support.example.com",   # what Twilio calls, if behind a proxy
}
# If the project runs Celery, add the catch-up task to its beat schedule:
CELERY_BEAT_SCHEDULE = {
    "reconcile-delivery-statuses": {
        "task": "conversations.tasks.reconcile_delivery_statuses", "schedule": 300.0,
    },
    "sweep-handoffs": {"task": "handoffs.tasks.sweep_handoffs", "schedule": 30.0},
}
