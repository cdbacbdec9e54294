"""Django settings for Community One Map; every value comes from ``core.settings``."""

from __future__ import annotations

import secrets

from core.settings import PROJECT_ROOT, database_settings, database_url
from core.settings import settings as onemap_settings

ONEMAP = onemap_settings()

BASE_DIR = PROJECT_ROOT
DEBUG = ONEMAP.debug


def _secret_key() -> str:
    if ONEMAP.secret_key:
        return ONEMAP.secret_key
    # a per-checkout key kept beside the embedded database, never in the repository
    path = ONEMAP.var_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = list(ONEMAP.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "procrastinate.contrib.django",  # the job queue (onemap worker): its tables, and the tasks of the apps below
    "gis.apps.GisConfig",
    "layers.apps.LayersConfig",  # after gis: publishes the views and row-level security on its tables
]

# Callers authenticate with personal access tokens on every request (api/auth.py);
# there are no sessions, cookies or forms, hence no session, CSRF or message
# middleware. Security headers (nosniff, frame DENY, referrer, COOP) come from ours.
MIDDLEWARE = [
    "api.middleware.SecurityHeadersMiddleware",
    "api.middleware.CrossSiteWriteMiddleware",
    "django.middleware.common.CommonMiddleware",
    "api.middleware.DatabaseOutageMiddleware",
]

ROOT_URLCONF = "api.urls"
WSGI_APPLICATION = "host.wsgi.application"
# OGC clients (QGIS) must get answers at the URLs they were given, never redirects
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PROJECT_ROOT / "api" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": ["django.template.context_processors.request", "api.views.site_context"]
        },
    }
]

DATABASES = {"default": database_settings(database_url(ONEMAP))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "zh-hans"
TIME_ZONE = ONEMAP.time_zone  # ONEMAP_TIME_ZONE
USE_I18N = True
USE_TZ = True

# the ASGI layer refuses bodies over this with 413 before reading them (host.asgi.MAX_REQUEST_BYTES);
# Django's own default (2.5 MB) would answer a bare 400 below it
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

STATIC_URL = "/static/"
STATIC_ROOT = ONEMAP.var_dir / "static"

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"onemap": {"level": "INFO"}, "pygeoapi": {"level": "ERROR"}},
}
