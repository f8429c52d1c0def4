"""Beacon settings, read from the environment.

Two back ends share one settings file: the embedded default (SQLite in WAL mode and a
filesystem Celery broker under ``var/``) and production (``DATABASE_URL`` for PostgreSQL,
``REDIS_URL`` for broker, cache and throttles).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
CHECKOUT_ID = hashlib.sha1(str(BASE_DIR).encode()).hexdigest()[:8]  # noqa: S324 - a name, not security


def env(name: str, default: str = "") -> str:
    """A setting from the environment, or from the file named by ``<NAME>_FILE``."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = env(name, "")
    if not raw:
        return default
    return raw.lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = env(name, "")
    return int(raw) if raw else default


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in env(name, default).split(",") if part.strip()]


def database_from_url(url: str) -> dict[str, object]:
    """Translate ``postgres://user:pass@host:port/name`` or ``sqlite:///path`` into Django's form."""
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        options = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")) or "beacon",
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
            # One test database per checkout, so several checkouts can run their suites at once.
            "TEST": {"NAME": options.pop("test_name", None) or f"test_beacon_{CHECKOUT_ID}"},
        }
    if parsed.scheme == "sqlite":
        path = unquote(url[len("sqlite:///") :]) or str(VAR_DIR / "beacon.sqlite3")
        return sqlite_database(Path(path))
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parsed.scheme!r} is not supported")


def sqlite_database(path: Path) -> dict[str, object]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # WAL lets the web process read while the worker writes; IMMEDIATE avoids the
        # upgrade deadlock that deferred transactions hit under concurrent writers.
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        },
        # Tests use a file too: the embedded default is a WAL file shared by processes, and
        # in-memory shared-cache databases lock differently.
        "TEST": {"NAME": str(path.with_name("test_" + path.name))},
    }


DEBUG = env_bool("DEBUG", False)
TESTING = env_bool("BEACON_TESTING", False) or "pytest" in sys.modules
VAR_DIR = Path(env("BEACON_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("SECRET_KEY must be set (or DEBUG=1 for development)")
    SECRET_KEY = "dev-only-insecure-key-not-for-production-use-0123456789abcdef"  # noqa: S105

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if (DEBUG or TESTING) else ""
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "exchange.admin_apps.BeaconAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "exchange",
    "exchange.audit",
    "exchange.delivery",
    "accounts",
    "signals",
]

MIDDLEWARE = [
    "exchange.middleware.RequestIdMiddleware",
    "exchange.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "exchange.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "exchange.middleware.SecurityHeadersMiddleware",
    "exchange.middleware.ApiProblemMiddleware",
    "axes.middleware.AxesMiddleware",
    "exchange.middleware.StatementTimeoutMiddleware",
]

ROOT_URLCONF = "exchange.urls"
WSGI_APPLICATION = "exchange.wsgi.application"
ASGI_APPLICATION = "exchange.asgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "exchange" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASE_URL = env("DATABASE_URL")
DATABASES = {
    "default": database_from_url(DATABASE_URL)
    if DATABASE_URL
    else sqlite_database(VAR_DIR / "beacon.sqlite3")
}
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "exchange.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Security -----------------------------------------------------------------------------
SESSION_COOKIE_AGE = env_int("BEACON_SESSION_SECONDS", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG and not TESTING:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$", r"^metrics$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Admin sign-in (docs/admin.md): TOTP second factor (django-otp, decision 0901); the CSRF
# cookie is never read by script; django-axes locks out repeated failures (decision 0902).
OTP_TOTP_ISSUER = env("BEACON_OTP_ISSUER", "Beacon exchange")
CSRF_COOKIE_HTTPONLY = True
AXES_FAILURE_LIMIT = env_int("BEACON_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 1  # hours
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("AXES_ENABLED", True)

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["exchange.jsonio.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["exchange.jsonio.FastJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "exchange.schema.BeaconAutoSchema",
    "EXCEPTION_HANDLER": "exchange.api.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Beacon exchange API",
    "DESCRIPTION": "Share and match signals about child sexual exploitation and TFGBV without raw personal data.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "bcn_"}}
    },
    "SECURITY": [{"bearer": []}],
    "ENUM_NAME_OVERRIDES": {
        "PurposeEnum": ["detection", "investigation", "research"],
        "FeedbackPurposeEnum": ["detection", "investigation"],
    },
}

BEACON_MAX_BODY_BYTES = env_int("BEACON_MAX_BODY_BYTES", 32 * 1024 * 1024)
BEACON_MAX_BATCH_ITEMS = env_int("BEACON_MAX_BATCH_ITEMS", 10_000)
BEACON_MAX_TEXT_CHARS = env_int("BEACON_MAX_TEXT_CHARS", 100_000)
BEACON_THROTTLE_RATE = env("BEACON_THROTTLE_RATE", "600/min")
BEACON_MATCH_THROTTLE_RATE = env("BEACON_MATCH_THROTTLE_RATE", "120/min")
BEACON_WRITE_THROTTLE_RATE = env("BEACON_WRITE_THROTTLE_RATE", "300/min")
BEACON_TOKEN_DEFAULT_DAYS = env_int("BEACON_TOKEN_DEFAULT_DAYS", 90)
BEACON_IDEMPOTENCY_HOURS = env_int("BEACON_IDEMPOTENCY_HOURS", 24)
# Kinds of member that never receive signals, whatever a signal's audience says (policy rule 6).
BEACON_BARRED_RECIPIENT_KINDS = env_list("BEACON_BARRED_RECIPIENT_KINDS", "government")

# Identifier peppers: "v1:<secret>,v2:<secret>"; the highest version is the write key.
BEACON_IDENTIFIER_PEPPERS = env("BEACON_IDENTIFIER_PEPPERS")
if not BEACON_IDENTIFIER_PEPPERS and (DEBUG or TESTING):
    BEACON_IDENTIFIER_PEPPERS = "v1:dev-only-pepper-do-not-use-in-production"
BEACON_AUDIT_SIGNING_KEY = env("BEACON_AUDIT_SIGNING_KEY")  # PEM Ed25519 private key
# After a key rotation: the earlier public keys (concatenated PEMs), so old checkpoints verify.
BEACON_AUDIT_PREVIOUS_PUBLIC_KEYS = env("BEACON_AUDIT_PREVIOUS_PUBLIC_KEYS")
# A signed checkpoint every N events or M minutes (whichever comes first, checked by beat).
BEACON_AUDIT_CHECKPOINT_EVERY = env_int("BEACON_AUDIT_CHECKPOINT_EVERY", 1000)
BEACON_AUDIT_CHECKPOINT_MINUTES = env_int("BEACON_AUDIT_CHECKPOINT_MINUTES", 10)
# Fail any member API request that leaves no audit event (on in tests; a safety net).
BEACON_AUDIT_STRICT = env_bool("BEACON_AUDIT_STRICT", TESTING)
# Events older than this are archived to sealed files by `manage.py audit_archive`
# (docs/audit-log.md "Retention"); nothing is removed until the archive verifies.
BEACON_AUDIT_RETENTION_DAYS = env_int("BEACON_AUDIT_RETENTION_DAYS", 730)
BEACON_FEED_CURSOR_KEY = env("BEACON_FEED_CURSOR_KEY") or SECRET_KEY
BEACON_ALLOW_PRIVATE_WEBHOOKS = env_bool("BEACON_ALLOW_PRIVATE_WEBHOOKS", DEBUG or TESTING)
BEACON_REPORT_MIN_COUNT = env_int("BEACON_REPORT_MIN_COUNT", 5)
BEACON_DISPUTE_FLAG_THRESHOLD = env_int("BEACON_DISPUTE_FLAG_THRESHOLD", 3)
# Who is e-mailed when a signal is flagged ("a@x.org,b@x.org"); empty sends nothing.
ADMINS = [("", address) for address in env_list("BEACON_ADMIN_EMAILS")]
SERVER_EMAIL = env("BEACON_SERVER_EMAIL", "beacon@localhost")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
BEACON_PDQ_QUALITY_FLOOR = env_int("BEACON_PDQ_QUALITY_FLOOR", 50)
BEACON_PDQ_DEFAULT_DISTANCE = env_int("BEACON_PDQ_DEFAULT_DISTANCE", 31)
# TAXII 2.1: the largest page the server answers, and the contact its discovery names.
BEACON_TAXII_PAGE_SIZE = env_int("BEACON_TAXII_PAGE_SIZE", 1000)
BEACON_TAXII_CONTACT = env("BEACON_TAXII_CONTACT", "")
BEACON_INDEX_REFRESH_SECONDS = float(env("BEACON_INDEX_REFRESH_SECONDS", "0" if TESTING else "2"))

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": 3600,
        # Publishing gives up quickly when Redis is down (the outbox and the sweeper recover
        # the work), instead of holding the request that committed it for seconds.
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
        "socket_connect_timeout": 2,
    }
else:
    for sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(CELERY_BROKER_DIR / "control"),
    }
# Results are only kept for probes (``exchange.ping``); every other task ignores them.
CELERY_RESULT_BACKEND = REDIS_URL or f"file://{VAR_DIR / 'results'}"
if not REDIS_URL:
    (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Expired signals become tombstones for their recipients within a minute.
    "signals-expire-due": {
        "task": "signals.expire_due",
        "schedule": float(env_int("BEACON_EXPIRE_EVERY_SECONDS", 60)),
        "options": {"queue": "maintenance"},
    },
}
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {
    "task": "exchange.audit.checkpoint",
    "schedule": float(env_int("BEACON_AUDIT_CHECKPOINT_CHECK_SECONDS", 30)),
    "options": {"queue": "maintenance"},
}
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    "exchange.delivery.fan_out": {"queue": "fanout"},
    "exchange.delivery.deliver": {"queue": "delivery"},
    "exchange.delivery.sweep": {"queue": "maintenance"},
}

# --- Fan-out and webhooks (docs/api.md "Webhooks", docs/decisions/0500-0505) -----------------
# Encrypts stored webhook secrets (AES-256-GCM); derived from SECRET_KEY when unset.
BEACON_WEBHOOK_SECRET_KEY = env("BEACON_WEBHOOK_SECRET_KEY")
BEACON_WEBHOOK_TIMEOUT_SECONDS = float(env("BEACON_WEBHOOK_TIMEOUT_SECONDS", "10"))
# Delays before attempts 1, 2, …; after the last one fails the delivery is dead-lettered.
BEACON_WEBHOOK_RETRY_SCHEDULE = [
    float(x)
    for x in env_list(
        "BEACON_WEBHOOK_RETRY_SCHEDULE", "0,5,300,1800,7200,18000,36000,50400,72000,86400"
    )
]
# Multiplies every delay of the schedule (tests and drills use a small factor).
BEACON_WEBHOOK_RETRY_SCALE = float(env("BEACON_WEBHOOK_RETRY_SCALE", "1"))
BEACON_WEBHOOK_ROTATION_HOURS = float(env("BEACON_WEBHOOK_ROTATION_HOURS", "24"))
BEACON_WEBHOOK_BATCH_EVENTS = env_int("BEACON_WEBHOOK_BATCH_EVENTS", 1000)
BEACON_MAX_SUBSCRIPTIONS_PER_MEMBER = env_int("BEACON_MAX_SUBSCRIPTIONS_PER_MEMBER", 20)
# How long one attempt may hold a delivery before another worker may take it over.
BEACON_DELIVERY_LEASE_SECONDS = float(
    env("BEACON_DELIVERY_LEASE_SECONDS", str(2 * BEACON_WEBHOOK_TIMEOUT_SECONDS + 30))
)
# A delivery queued this long ago and still due (its message was lost) is queued again.
BEACON_DELIVERY_REQUEUE_SECONDS = float(env("BEACON_DELIVERY_REQUEUE_SECONDS", "300"))
# Retries due within this many seconds are queued with a countdown; later ones by the sweeper.
BEACON_DELIVERY_COUNTDOWN_MAX_SECONDS = float(env("BEACON_DELIVERY_COUNTDOWN_MAX_SECONDS", "60"))
# Outbox rows still unprocessed after this long get a fan-out from the sweeper.
BEACON_OUTBOX_GRACE_SECONDS = float(env("BEACON_OUTBOX_GRACE_SECONDS", "10"))
BEACON_DELIVERY_SWEEP_SECONDS = float(env("BEACON_DELIVERY_SWEEP_SECONDS", "15"))
CELERY_BEAT_SCHEDULE["delivery-sweep"] = {
    "task": "exchange.delivery.sweep",
    "schedule": BEACON_DELIVERY_SWEEP_SECONDS,
    "options": {"queue": "maintenance", "expires": BEACON_DELIVERY_SWEEP_SECONDS * 4},
}

# --- Production hardening and operations (docs/threat-model.md, deploy/runbook.md) ---------
# Longest SQL statement of an API request on PostgreSQL; 0 turns the bound off.
BEACON_API_STATEMENT_TIMEOUT_MS = env_int("BEACON_API_STATEMENT_TIMEOUT_MS", 30_000)
# A member's matched values in the current hour raise an alert (audit event and log line)
# when they pass both this floor and FACTOR times its hourly average over the last day.
BEACON_MATCH_ALERT_MIN_VALUES = env_int("BEACON_MATCH_ALERT_MIN_VALUES", 50_000)
BEACON_MATCH_ALERT_FACTOR = float(env("BEACON_MATCH_ALERT_FACTOR", "10"))
# Bearer token of the Prometheus scraper for /metrics (staff sessions may read it too).
BEACON_METRICS_TOKEN = env("BEACON_METRICS_TOKEN")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
