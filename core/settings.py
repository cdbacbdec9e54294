"""Settings of Community One Map, read from ``ONEMAP_*`` environment variables.

Django's ``host.settings``, the ``onemap`` CLI, the published layers and the camera
pipelines all read this one place, through :func:`settings`, so a variable means the
same thing to the server, the tests and the tools. :func:`database_url` is the one
answer to "which database": ``ONEMAP_DATABASE_URL``, else the embedded cluster's.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "ONEMAP_"
EMBEDDED_DB_NAME = "onemap"
EMBEDDED_DB_USER = "onemap"


class ConfigError(ValueError):
    """A setting is present but cannot be understood."""


@dataclass(frozen=True)
class OnemapSettings:
    """Process-wide settings; every field comes from one ``ONEMAP_`` variable."""

    database_url: str | None
    var_dir: Path
    db_port: int
    http_host: str
    http_port: int
    debug: bool
    secret_key: str | None
    allowed_hosts: tuple[str, ...]
    public_url: str | None = None
    # longest a request's statement may run before it is cancelled (a 400 naming the limit)
    statement_timeout_s: float = 30.0
    # PostgreSQL's synchronous_commit for the embedded cluster: "on" (durable) unless the operator chooses
    synchronous_commit: str = "on"

    @classmethod
    def from_env(cls, env: os._Environ | dict | None = None) -> "OnemapSettings":
        env = os.environ if env is None else env
        var_dir = Path(env.get("ONEMAP_VAR_DIR", PROJECT_ROOT / ".var")).resolve()
        return cls(
            database_url=env.get("ONEMAP_DATABASE_URL") or None,
            var_dir=var_dir,
            db_port=_int(env, "ONEMAP_DB_PORT", 55432, low=1024, high=65535),
            http_host=env.get("ONEMAP_HTTP_HOST", "127.0.0.1"),
            http_port=_int(env, "ONEMAP_HTTP_PORT", 8000, low=1, high=65535),
            debug=_bool(env, "ONEMAP_DEBUG", False),
            secret_key=env.get("ONEMAP_SECRET_KEY") or None,
            allowed_hosts=tuple(
                h.strip()
                for h in env.get("ONEMAP_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
                if h.strip()
            ),
            public_url=env.get("ONEMAP_PUBLIC_URL") or None,
            statement_timeout_s=_int(env, "ONEMAP_STATEMENT_TIMEOUT_S", 30, low=1, high=3600),
            synchronous_commit=_choice(env, "ONEMAP_DB_SYNCHRONOUS_COMMIT", "on", ("on", "off", "local", "remote_write")),
        )

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None


_cache: dict[tuple, OnemapSettings] = {}
_cache_lock = threading.Lock()


def settings() -> OnemapSettings:
    """The settings of the current environment, read once per distinct set of ``ONEMAP_*`` values.

    Keyed by those values rather than cached once, so a process (a test, a command) that
    sets a variable after the first read gets what it set, never a stale copy.
    """
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX)))
    found = _cache.get(key)
    if found is None:
        found = OnemapSettings.from_env()
        with _cache_lock:
            _cache[key] = found
    return found


def database_url(current: OnemapSettings | None = None) -> str:
    """The database the project uses: ``ONEMAP_DATABASE_URL``, else the embedded cluster's ``onemap`` database."""
    current = current or settings()
    if current.database_url:
        return current.database_url
    return embedded_database_url(current.var_dir, current.db_port)


def embedded_database_url(var_dir: Path, port: int, dbname: str = EMBEDDED_DB_NAME) -> str:
    """The URL of a database of the embedded cluster under ``var_dir`` (its password kept in ``pg/password``)."""
    password_file = Path(var_dir) / "pg" / "password"
    password = password_file.read_text().strip() if password_file.exists() else ""
    auth = f"{EMBEDDED_DB_USER}:{quote(password, safe='')}" if password else EMBEDDED_DB_USER
    return f"postgresql://{auth}@127.0.0.1:{port}/{dbname}"


def database_settings(url: str) -> dict:
    """Django ``DATABASES['default']`` for a ``postgresql://`` / ``postgis://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "postgis"}:
        raise ConfigError(
            f"ONEMAP_DATABASE_URL must start with postgresql:// (got {parts.scheme or 'no'} scheme)"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ConfigError("ONEMAP_DATABASE_URL names no database (postgresql://user@host:port/DBNAME)")
    options = dict(parse_qsl(parts.query))
    host = unquote(parts.hostname or "") or options.pop("host", "")
    return {
        "ENGINE": "django.contrib.gis.db.backends.postgis",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or options.pop("port", "") or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def with_database_name(url: str, name: str) -> str:
    """The same server URL, pointing at database ``name``."""
    parts = urlsplit(url)
    return parts._replace(path="/" + name).geturl()


def _int(env, key: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, got {value}")
    return value


def _choice(env, key: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(key) or "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _bool(env, key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")
