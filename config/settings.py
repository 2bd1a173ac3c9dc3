"""Host project settings: everything comes from the environment, with embedded defaults.

Unset, the project runs on SQLite (WAL) and kombu's filesystem broker, so `make run` needs
no server. `DATABASE_URL` and `CELERY_BROKER_URL` switch to PostgreSQL and Redis.
"""

import json
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the embedded defaults keep their files (SQLite database, broker queue, beat schedule).
DATA_DIR = Path(os.environ.get("HANDOFF_AUDITOR_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# `make run` (Makefile, bin/run) sets a local-only key; anything else must set its own.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or "pytest" in sys.modules):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random value (see README, Deploying "
            "safely); `make run` sets a local-only one, and so does DJANGO_DEBUG=1.")
    SECRET_KEY = "insecure-local-only-handoff-auditor-demo-key-change-me"

PUBLIC_BASE_URL = os.environ.get("HANDOFF_AUDITOR_PUBLIC_BASE_URL", "").rstrip("/")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
if PUBLIC_BASE_URL:
    ALLOWED_HOSTS.append(urlsplit(PUBLIC_BASE_URL).hostname or "")
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL] if PUBLIC_BASE_URL else []
if env_bool("DJANGO_BEHIND_TLS_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
# Served over TLS (a proxy in front, or an https public URL): cookies only over https,
# http redirected (not /healthz, for load balancers), HSTS for a year (0 turns it off).
if env_bool("DJANGO_BEHIND_TLS_PROXY") or PUBLIC_BASE_URL.startswith("https://"):
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    # Every subdomain over TLS too, and the browsers' preload list: the operator's call
    # (Django's check --deploy notes both, security.W005 and W021, until they are on).
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS")
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD")
SECURE_CONTENT_TYPE_NOSNIFF = True  # X-Content-Type-Options: nosniff
SECURE_REFERRER_POLICY = "same-origin"
# How many proxies in front append the client's address to X-Forwarded-For (one by default
# behind DJANGO_BEHIND_TLS_PROXY, else none: the header is then never read). Sign-in
# throttling counts failures per address (config/proxy.py).
TRUSTED_PROXY_COUNT = int(os.environ.get(
    "DJANGO_TRUSTED_PROXY_COUNT", "1" if env_bool("DJANGO_BEHIND_TLS_PROXY") else "0"))

# Content-Security-Policy on every answer (django-csp). Scripts only from our own static
# files; styles from our static files and from <style> elements carrying the request's
# nonce; no inline script, no event-handler attribute, no style="" attribute. SVG charts
# are drawn inline with presentation attributes (fill=, width=), which CSP does not govern.
# The API's Swagger UI and Redoc pages relax style-src only (audit/api/views.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Sign-in throttling (django-axes), on the site's sign-in and the admin's alike: after
# DJANGO_LOGIN_FAILURE_LIMIT failed sign-ins for one username from one address, that pair
# is refused (429, registration/locked_out.html) for DJANGO_LOGIN_COOLOFF_MINUTES, even
# with the right password; each further try restarts the wait. A success clears the count;
# `manage.py axes_reset_username NAME` (or the admin's Access attempts) lets someone in now.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("DJANGO_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("DJANGO_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_VERBOSE = False  # no start-up banner on every manage.py command
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "config.proxy.client_ip"
SESSION_COOKIE_HTTPONLY = True
# Sessions: two weeks for everyone else, STAFF_SESSION_SECONDS for staff (audit.apps).
# Password reset needs a way to send mail: its pages exist only when one is configured.
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND",
                               "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
PASSWORD_RESET_ENABLED = bool(os.environ.get("DJANGO_EMAIL_BACKEND")
                              or os.environ.get("EMAIL_HOST"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "conversations",
    "channels.apps.ChannelsConfig",
    "handoffs",
    "scoring",
    "alerts",
    "audit",
    # Demo data (`seed_demo`, `ensure_demo_user`): this host project's only, never a plugin's.
    "demo",
    # The REST API (audit/api/, see README "REST API").
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Security: Content-Security-Policy (django-csp), sign-in throttling (django-axes).
    "csp",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]
try:  # whitenoise comes with the `server` extra; the plugin itself does not need it
    import whitenoise  # noqa: F401
except ImportError:  # pragma: no cover
    MIDDLEWARE.remove("whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web process read while the worker writes; IMMEDIATE takes the write
        # lock up front so concurrent writers wait (timeout) instead of failing on upgrade.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DB_PREPARED_STATEMENTS", True
):
    # Django turns psycopg's prepared statements off (for transaction-mode poolers). The
    # ORM's client-side cursors never prepare anyway; this lets the webhook ingest path
    # prepare its few statements once per connection (conversations/services.py): 40% less
    # PostgreSQL CPU per webhook, measured. Set DB_PREPARED_STATEMENTS=0 behind a pooler
    # that cannot keep prepared statements (PgBouncer < 1.21 in transaction mode).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "audit:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# The embedded broker names a host, which the filesystem transport ignores: without one,
# kombu warns "No hostname was supplied" on every connection (web, worker, beat, seed_demo).
EMBEDDED_BROKER_URL = "filesystem://localhost/"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", EMBEDDED_BROKER_URL)
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_URL = EMBEDDED_BROKER_URL
if CELERY_BROKER_URL == EMBEDDED_BROKER_URL:
    _queue_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
elif os.environ.get("CELERY_BROKER_TRANSPORT_OPTIONS"):
    # JSON, e.g. {"visibility_timeout": 3600}: how long an unacknowledged task (its worker
    # killed) waits before Redis hands it to another worker, and how often workers look.
    # The tests shorten both (tests/scoring/test_scoring_worker.py).
    CELERY_BROKER_TRANSPORT_OPTIONS = json.loads(os.environ["CELERY_BROKER_TRANSPORT_OPTIONS"])
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

HANDOFF_AUDITOR = {
    "TWILIO_AUTH_TOKENS": env_list("TWILIO_AUTH_TOKEN"),
    "EVENTS_SECRETS": env_list("HANDOFF_AUDITOR_EVENTS_SECRETS"),
    "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    # How webhooks wake the applier: "task" (Celery), "inline", "none" (beat only).
    "APPLIER_WAKE": os.environ.get("HANDOFF_AUDITOR_APPLIER_WAKE", "task"),
    # Raw events one applier transaction takes at most, and from how many partitions
    # (docs/deploy.md, Tuning the applier).
    **({"APPLIER_BATCH_SIZE": int(os.environ["HANDOFF_AUDITOR_APPLIER_BATCH_SIZE"])}
       if os.environ.get("HANDOFF_AUDITOR_APPLIER_BATCH_SIZE") else {}),
    **({"APPLIER_PARTITIONS_PER_BATCH": int(
        os.environ["HANDOFF_AUDITOR_APPLIER_PARTITIONS_PER_BATCH"])}
       if os.environ.get("HANDOFF_AUDITOR_APPLIER_PARTITIONS_PER_BATCH") else {}),
    "EMAIL_ADDRESSES": env_list("HANDOFF_AUDITOR_EMAIL_ADDRESSES"),
    "EMAIL_THREAD_WINDOW_HOURS": int(
        os.environ.get("HANDOFF_AUDITOR_EMAIL_THREAD_WINDOW_HOURS", "72")
    ),
    # Each e-mail ESP's own basic-auth secret: ANYMAIL_WEBHOOK_SECRET_<ESP>, e.g.
    # ANYMAIL_WEBHOOK_SECRET_POSTMARK="anymail:pw1" (comma-separated for rotation).
    "EMAIL_WEBHOOK_SECRETS": {
        name.removeprefix("ANYMAIL_WEBHOOK_SECRET_").lower(): env_list(name)
        for name in sorted(os.environ) if name.startswith("ANYMAIL_WEBHOOK_SECRET_")
    },
    # Alert destinations on http:// or private addresses (a local receiver; docs/alerts.md).
    "ALERTS_ALLOW_HTTP": env_bool("HANDOFF_AUDITOR_ALERTS_ALLOW_HTTP"),
    "ALERTS_ALLOW_PRIVATE_ADDRESSES": env_bool("HANDOFF_AUDITOR_ALERTS_ALLOW_PRIVATE_ADDRESSES"),
    "ALERTS_CLAIM_SECONDS": float(os.environ.get("HANDOFF_AUDITOR_ALERTS_CLAIM_SECONDS", "60")),
    "ALERTS_QUEUE": os.environ.get("HANDOFF_AUDITOR_ALERTS_QUEUE", ""),
    # The access log's client address, behind TRUSTED_PROXY_COUNT proxies (config/proxy.py).
    "CLIENT_IP": "config.proxy.client_ip",
    "RETENTION_DAYS": (
        int(os.environ["HANDOFF_AUDITOR_RETENTION_DAYS"])
        if os.environ.get("HANDOFF_AUDITOR_RETENTION_DAYS") else None
    ),
}

# Inbound e-mail through django-anymail (/hooks/email/<esp>/inbound/). Only secrets that are
# set are passed on: an empty Mailgun signing key would verify signatures anyone can make.
# Postmark and SendGrid are secured by basic auth: give each ESP its own secret
# (ANYMAIL_WEBHOOK_SECRET_<ESP> above); WEBHOOK_SECRET, "user:password" (or several,
# comma-separated, for rotation), is the older shared one that opens every ESP's routes.
ANYMAIL = {
    name: value
    for name, value in {
        "MAILGUN_WEBHOOK_SIGNING_KEY": os.environ.get("ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY", ""),
        "WEBHOOK_SECRET": env_list("ANYMAIL_WEBHOOK_SECRET"),
    }.items()
    if value
}

# The API's views name their own authentication, permissions, pagination and schema class, so
# a host needs only the INSTALLED_APPS above; these are the project-wide DRF defaults for
# anything else.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["audit.api.permissions.CanViewAuditor"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# Swagger UI and Redoc from drf-spectacular-sidecar's static files, never a CDN.
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # drf-spectacular's `check --deploy` step builds a schema of every URL with these
    # global settings, not the API's own (audit.api.views.SCHEMA_SETTINGS: its enum names),
    # and warns about names the served schema does not have. tests/audit/test_api_schema.py
    # validates the schema the API actually serves.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
# Quiet at INFO: no line per task ("Task ... received", "... succeeded in ...", beat's
# "Sending due task ..."); a task's failure (ERROR) and our own lines still show.
# LOG_LEVEL_TASKS=INFO brings the per-task lines (and Celery's retry lines) back.
LOG_LEVEL_TASKS = os.environ.get("LOG_LEVEL_TASKS", "WARNING").strip().upper()
if LOG_LEVEL_TASKS not in logging.getLevelNamesMapping():
    raise ImproperlyConfigured(f"LOG_LEVEL_TASKS={LOG_LEVEL_TASKS!r}: not a logging level "
                               "(DEBUG, INFO, WARNING, ERROR)")
if logging.getLevelNamesMapping()[LOG_LEVEL_TASKS] > logging.INFO:
    LOGGING["filters"] = {"no_beat_sends": {"()": "config.log_filters.DropMessages",
                                            "prefixes": ["Scheduler: Sending due task"]}}
    LOGGING["loggers"] = {
        "celery.app.trace": {"level": LOG_LEVEL_TASKS},
        "celery.worker.strategy": {"level": LOG_LEVEL_TASKS},
        # beat's own start and stop lines stay ("beat: Starting..."), its sends go.
        "celery.beat": {"filters": ["no_beat_sends"]},
    }

# Periodic work (Celery beat). A host project that installs the plugin copies these entries.
CELERY_BEAT_SCHEDULE = {
    # The applier's safety net: webhooks wake it after each commit; this catches a wake
    # lost to a broker outage or a killed worker (conversations.applier).
    "apply-raw-events": {"task": "conversations.tasks.apply_raw_events", "schedule": 10.0},
    "reconcile-delivery-statuses": {
        "task": "conversations.tasks.reconcile_delivery_statuses",
        "schedule": 300.0,
    },
    "sweep-handoffs": {
        "task": "handoffs.tasks.sweep_handoffs",
        "schedule": float(os.environ.get("HANDOFF_AUDITOR_SWEEP_SECONDS", "30")),
    },
    # Messages left unscored (broker outage, killed worker, new scorer versions).
    "score-catch-up": {"task": "scoring.tasks.score_catch_up", "schedule": 300.0},
    # Daily aggregates (yesterday and today) and tone drift detection.
    "scores-daily": {"task": "scoring.tasks.scores_daily", "schedule": 3600.0},
    # Retention (does nothing unless HANDOFF_AUDITOR_RETENTION_DAYS is set).
    "purge-retention": {"task": "conversations.tasks.purge_retention", "schedule": 86400.0},
    # QA review queues take newly matching conversations (docs/qa.md).
    "fill-qa-queues": {"task": "audit.tasks.fill_qa_queues", "schedule": 900.0},
    # The dashboards' daily rollups of the days whose facts changed (audit.rollups).
    "dashboard-rollups": {
        "task": "audit.tasks.refresh_dashboard_rollups",
        "schedule": float(os.environ.get("HANDOFF_AUDITOR_ROLLUP_SECONDS", "60")),
    },
    # Alerts (docs/alerts.md): every rule each minute, flag rules every 15 s, the outbox
    # sweep (retries due, quiet hours over, a killed worker's deliveries), digests.
    "alerts-evaluate": {"task": "alerts.tasks.evaluate_alert_rules", "schedule": 60.0},
    "alerts-flags": {"task": "alerts.tasks.evaluate_flag_rules", "schedule": 15.0},
    "alerts-deliveries-due": {"task": "alerts.tasks.send_due_deliveries", "schedule": 15.0},
    "alerts-digest-hourly": {"task": "alerts.tasks.send_digests", "args": ["hourly"],
                             "schedule": crontab(minute=0)},
    "alerts-digest-daily": {"task": "alerts.tasks.send_digests", "args": ["daily"],
                            "schedule": crontab(minute=0, hour=0)},
}
