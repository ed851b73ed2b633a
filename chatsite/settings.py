"""Settings for the chat site. Everything read from the environment is read here."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_flag(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0, not {value!r}.")


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, not {raw!r}.") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be positive, not {raw!r}.")
    return value


DEBUG = _env_flag("DJANGO_DEBUG", "1")

_DEV_SECRET_KEY = "django-insecure-dev-only-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG=0.")
    SECRET_KEY = _DEV_SECRET_KEY

# Also the allowed WebSocket origins (see chat.origin).
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    # First, so that `manage.py runserver` is the chat's: Daphne's, which
    # serves WebSockets, draining on SIGTERM (chat/management/commands/runserver.py).
    "chat",
    # Before staticfiles, whose runserver it overrides (the chat's extends it).
    "daphne",
    # Django's admin, its default site the chat's (with the live members page).
    "chat.apps.ChatAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After the session, before CommonMiddleware (Django's documented order):
    # the page's language from Accept-Language. WebSockets pass no middleware;
    # the consumer reads the handshake's header itself (chat.i18n).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"

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

WSGI_APPLICATION = None
ASGI_APPLICATION = "chatsite.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        # Set but blank (an unfilled line of an env file) means unset, as for
        # REDIS_URL; dj_database_url.config() would return no ENGINE at all.
        # Not a setting of its own: the error page would show its password.
        os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes share one SQLite file: wait for a writer instead of
    # failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Unset: the in-process layer, one process. Set: our Redis pub/sub layer (or
# channels-redis, see docs/deploy.md), any number of processes sharing
# presence, names and settings through Redis.
REDIS_URL = os.environ.get("REDIS_URL", "").strip() or None

# Daphne closes a WebSocket after this long (its default, for `runserver` and
# the `daphne` command alike); the page then reconnects and rejoins.
DAPHNE_WEBSOCKET_TIMEOUT = 86400
# Our channel layers keep a group membership until the member leaves; a
# layer that expires memberships (channels-redis, docs/deploy.md) needs a
# group expiry above this, which chat.checks verifies.


# A member's presence entry in Redis lives this long unless its process
# refreshes it (every quarter of it), so the members of a killed process
# vanish from every room within TTL plus one sweep interval: 12.5 s with the
# default, well inside SPEC's 60 s. Shorter costs more Redis traffic and
# risks expiring the members of a process that merely stalls.
CHAT_PRESENCE_TTL_SECONDS = _env_seconds("CHAT_PRESENCE_TTL_SECONDS", 10.0)

# Events a member's channel holds before it is told it fell behind: a busy
# room's burst must not overflow it.
CHANNEL_CAPACITY = 1000

# Who is in which room (chat.presence), beside the channel layer and on the
# same store: in the process, or in Redis for every process.
if REDIS_URL:
    CHAT_PRESENCE = {
        "BACKEND": "chat.presence.redis.RedisPresence",
        "OPTIONS": {"url": REDIS_URL, "ttl": CHAT_PRESENCE_TTL_SECONDS},
    }
else:
    CHAT_PRESENCE = {"BACKEND": "chat.presence.memory.LocalPresence"}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # One PUBLISH per message and process, fan-out in the process; it
            # closes its members with 4503 when it loses Redis. Its timeouts
            # and pool are set in chat/layers/redis.py. docs/deploy.md has
            # channels-redis's RedisChannelLayer as the alternative, and why not.
            "BACKEND": "chat.layers.redis.ChatRedisChannelLayer",
            "CONFIG": {"url": REDIS_URL, "capacity": CHANNEL_CAPACITY},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # Not Channels' InMemoryChannelLayer: see chat/layers/memory.py for why.
            "BACKEND": "chat.layers.memory.ChatChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY},
        }
    }

# The transport's own limit on one incoming WebSocket message: a bigger one
# is closed by the server with 1009 before it reaches the application.
CHAT_MAX_FRAME_BYTES = 64 * 1024
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = CHAT_MAX_FRAME_BYTES
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = CHAT_MAX_FRAME_BYTES

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The page and every error `detail` in English and Brazilian Portuguese. Any
# Portuguese tag (pt, pt-PT, pt-BR) gets pt-br: Django falls back to a listed
# variant of the same language. Anything else gets LANGUAGE_CODE. A third
# language is one more entry here and one more message file.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Filled by `manage.py collectstatic`, which production runs once per release.
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if not DEBUG:
    # The admin's CSS and scripts served by the app itself, from STATIC_ROOT:
    # no second web server to configure for them. With DEBUG on, `runserver`
    # serves them from the apps.
    MIDDLEWARE.insert(1, "chatsite.static.StaticFilesMiddleware")
    # Names with a hash of the content, cached by browsers for good, and
    # compressed copies. Needs collectstatic before the first request (a page
    # naming a file it lacks is a 500), so it is a step of every release.
    STORAGES["staticfiles"]["BACKEND"] = "whitenoise.storage.CompressedManifestStaticFilesStorage"

# Every line with its time and level; the chat's own lines one JSON object
# each with CHAT_LOG_FORMAT=json (chatsite/logs.py). uvicorn's server log
# is given the same format once the app is loaded (its access log stays as
# the command line set it). What the chat logs is listed in the README: no
# message text and no names.
CHAT_LOG_LEVEL = os.environ.get("CHAT_LOG_LEVEL", "INFO").strip().upper() or "INFO"
CHAT_LOG_FORMAT = os.environ.get("CHAT_LOG_FORMAT", "text").strip().lower() or "text"
if CHAT_LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"CHAT_LOG_FORMAT must be text or json, not {CHAT_LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "chatsite.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "text"},
        "chat": {"class": "logging.StreamHandler", "formatter": CHAT_LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "chat": {"handlers": ["chat"], "level": CHAT_LOG_LEVEL, "propagate": False},
        # Django's own handlers print only with DEBUG on, or mail ADMINS: to the root instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        # uvicorn's server log. Not "uvicorn" itself: configuring a logger
        # resets its children, and uvicorn.access would log again despite
        # --no-access-log.
        "uvicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# GET /metrics (chat.metrics) is served only with this token, to a request
# bearing it; unset, the endpoint is 404 and nothing is counted.
CHAT_METRICS_TOKEN = os.environ.get("CHAT_METRICS_TOKEN", "").strip()

if not DEBUG:
    SESSION_COOKIE_SECURE = _env_flag("DJANGO_SECURE_COOKIES", "1")
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
    # Behind the TLS-terminating proxy of docs/deploy.md, which says so in
    # X-Forwarded-Proto; plain HTTP is redirected, except the load balancer's
    # health checks and Prometheus's scrapes, which reach the processes directly.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _env_flag("DJANGO_SSL_REDIRECT", "1")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    # An hour to start with: a site that must fall back to plain HTTP is
    # locked out of browsers only that long. Raise it once TLS is settled.
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "3600"))
    # Covers hosts below the chat's own (e.g. *.chat.example.org), not its siblings.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_flag("DJANGO_HSTS_INCLUDE_SUBDOMAINS", "1")
    # Joining the browsers' preload list is the domain owner's decision,
    # made outside the app and hard to undo, so the app does not ask for it.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
