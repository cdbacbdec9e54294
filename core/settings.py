"""Settings of Community One Map, read from ``ONEMAP_*`` environment variables.

Django's ``host.settings``, the ``onemap`` CLI, the published layers and the camera
pipelines all read this one place, through :func:`settings`, so a variable means the
same thing to the server, the tests and the tools. :func:`database_url` is the one
answer to "which database": ``ONEMAP_DATABASE_URL``, else the embedded cluster's.
"""

from __future__ import annotations

import json
import os
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "ONEMAP_"
EMBEDDED_DB_NAME = "onemap"
EMBEDDED_DB_USER = "onemap"


class ConfigError(ValueError):
    """A setting is present but cannot be understood."""


@dataclass(frozen=True)
class SiteSettings:
    """Who runs this server, as its pages and the OGC API's metadata say; an unset contact field is left out."""

    title: str = "Community One Map"
    title_zh: str = "社区一张图"
    operator: str = "西大街街道网格化管理中心 · Xidajie Subdistrict Grid Management Centre"
    address: str = "河南省郑州市管城回族区西大街街道"
    email: str | None = None
    phone: str | None = None
    logo_url: str = "/static/onemap/logo.svg"

    @property
    def full_title(self) -> str:
        return f"{self.title_zh} · {self.title}"

    @classmethod
    def from_env(cls, env) -> "SiteSettings":
        default = cls()
        return cls(
            title=env.get("ONEMAP_SITE_TITLE") or default.title,
            title_zh=env.get("ONEMAP_SITE_TITLE_ZH") or default.title_zh,
            operator=env.get("ONEMAP_CONTACT_NAME") or default.operator,
            address=env.get("ONEMAP_CONTACT_ADDRESS") or default.address,
            email=env.get("ONEMAP_CONTACT_EMAIL") or None,
            phone=env.get("ONEMAP_CONTACT_PHONE") or None,
            logo_url=env.get("ONEMAP_SITE_LOGO_URL") or default.logo_url,
        )


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
    # the one time zone of every "today", panel and clock (an IANA name; the screen shows it whatever the browser's)
    time_zone: str = "Asia/Shanghai"
    # the notification outbox and its channels (ONEMAP_OUTBOX_*, ONEMAP_SMS_*, ONEMAP_DINGTALK_ROBOTS)
    notifications: NotificationSettings = field(default_factory=lambda: NotificationSettings())
    # the sensors' MQTT broker and the ingest (ONEMAP_MQTT_*, ONEMAP_INGEST_*)
    mqtt: MqttSettings = field(default_factory=lambda: MqttSettings())
    # the product's name, operator and logo on every page (ONEMAP_SITE_*, ONEMAP_CONTACT_*)
    site: SiteSettings = field(default_factory=lambda: SiteSettings())

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
            time_zone=_time_zone(env, "ONEMAP_TIME_ZONE", "Asia/Shanghai"),
            notifications=NotificationSettings.from_env(env),
            mqtt=MqttSettings.from_env(env),
            site=SiteSettings.from_env(env),
        )

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None


@dataclass(frozen=True)
class DingTalkRobot:
    """A DingTalk group's custom robot: its webhook (with the access token) and its signing secret."""

    name: str
    webhook: str = field(repr=False)  # the access token is in it
    secret: str = field(repr=False)


SMS_FIELDS = ("phone", "message", "key")  # what ONEMAP_SMS_TEMPLATE may fill in
DEFAULT_SMS_TEMPLATE = '{"phone": "{phone}", "message": "{message}", "request_id": "{key}"}'


@dataclass(frozen=True)
class NotificationSettings:
    """The outbox's retries and the channels' endpoints (see docs/notifications.md)."""

    # first retry after this many seconds, doubling each attempt up to backoff_max_s
    backoff_s: float = 10.0
    backoff_max_s: float = 3600.0
    # attempts before a notification is dead-lettered
    max_attempts: int = 8
    # one request to a channel may take this long
    timeout_s: float = 10.0
    # a notification being sent is another worker's to retry after this long (the sender died)
    lease_s: float = 60.0
    # the sweep that (re)queues due notifications runs every this many seconds
    sweep_s: int = 5
    sms_url: str | None = None
    sms_template: str = DEFAULT_SMS_TEMPLATE
    dingtalk_robots: tuple[DingTalkRobot, ...] = ()

    @classmethod
    def from_env(cls, env) -> "NotificationSettings":
        made = cls(
            backoff_s=_float(env, "ONEMAP_OUTBOX_BACKOFF_S", 10.0, low=0.01, high=86400),
            backoff_max_s=_float(env, "ONEMAP_OUTBOX_BACKOFF_MAX_S", 3600.0, low=0.01, high=7 * 86400),
            max_attempts=_int(env, "ONEMAP_OUTBOX_MAX_ATTEMPTS", 8, low=1, high=100),
            timeout_s=_float(env, "ONEMAP_OUTBOX_TIMEOUT_S", 10.0, low=0.1, high=300),
            lease_s=_float(env, "ONEMAP_OUTBOX_LEASE_S", 60.0, low=1, high=86400),
            sweep_s=_int(env, "ONEMAP_OUTBOX_SWEEP_S", 5, low=1, high=60),
            sms_url=_http_url(env, "ONEMAP_SMS_URL"),
            sms_template=_sms_template(env, "ONEMAP_SMS_TEMPLATE"),
            dingtalk_robots=_dingtalk_robots(env, "ONEMAP_DINGTALK_ROBOTS"),
        )
        if made.lease_s <= made.timeout_s:
            # a sender whose request is still allowed to run must not lose its notification to another worker
            raise ConfigError(
                f"ONEMAP_OUTBOX_LEASE_S ({made.lease_s:g}) must be longer than ONEMAP_OUTBOX_TIMEOUT_S ({made.timeout_s:g})"
            )
        return made

    def dingtalk_robot(self, name: str) -> DingTalkRobot | None:
        return next((robot for robot in self.dingtalk_robots if robot.name == name), None)


@dataclass(frozen=True)
class MqttBroker:
    """Where an MQTT broker listens and how the ingest signs in to it."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MqttSettings:
    """The sensors' broker (the project's own Mosquitto unless ONEMAP_MQTT_URL) and the ingest's limits (docs/sensors.md)."""

    # another broker: mqtt://user:pass@host:port; then the project starts none of its own
    url: MqttBroker | None = None
    # loopback port of the project's own Mosquitto
    port: int = 51883
    # per device: messages a second kept up over time, and the burst allowed above it
    rate_per_s: float = 20.0
    burst: int = 100
    # the ingest commits at most this many messages at once, waiting at most batch_wait_s to fill a batch
    batch_max: int = 2000
    batch_wait_s: float = 0.05
    # a message stamped further than this into the future is rejected (a device's clock is wrong)
    future_s: float = 300.0
    # the ingest logs what it did (and writes the rate-limited counts) every this many seconds
    summary_s: float = 10.0

    @classmethod
    def from_env(cls, env) -> "MqttSettings":
        return cls(
            url=_mqtt_url(env, "ONEMAP_MQTT_URL"),
            port=_int(env, "ONEMAP_MQTT_PORT", 51883, low=1024, high=65535),
            rate_per_s=_float(env, "ONEMAP_INGEST_RATE", 20.0, low=0.01, high=100_000),
            burst=_int(env, "ONEMAP_INGEST_BURST", 100, low=1, high=1_000_000),
            batch_max=_int(env, "ONEMAP_INGEST_BATCH", 2000, low=1, high=50_000),
            batch_wait_s=_float(env, "ONEMAP_INGEST_BATCH_WAIT_S", 0.05, low=0.001, high=10),
            future_s=_float(env, "ONEMAP_INGEST_FUTURE_S", 300.0, low=0, high=86400),
            summary_s=_float(env, "ONEMAP_INGEST_SUMMARY_S", 10.0, low=0.1, high=3600),
        )

    @property
    def uses_embedded_broker(self) -> bool:
        return self.url is None


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
    return _number(env, key, default, int, "an integer", low=low, high=high)


def _float(env, key: str, default: float, *, low: float, high: float) -> float:
    return _number(env, key, default, float, "a number (seconds)", low=low, high=high)


def _number(env, key: str, default, parse, what: str, *, low, high):
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{key} must be {what}, got {raw!r}") from None
    if not low <= value <= high:  # also refuses nan
        raise ConfigError(f"{key} must be between {low:g} and {high:g}, got {value}")
    return value


def _http_url(env, key: str) -> str | None:
    raw = (env.get(key) or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key} must be an http:// or https:// URL with a host, got {parts.scheme or 'no'} scheme")
    return raw


def _mqtt_url(env, key: str) -> MqttBroker | None:
    raw = (env.get(key) or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigError(f"{key} must be mqtt://user:password@host:port, got {parts.scheme or 'no'} scheme")
    try:
        port = parts.port or 1883
    except ValueError:
        raise ConfigError(f"{key} has a port that is not a number") from None
    return MqttBroker(host=parts.hostname, port=port, username=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None)


def _sms_template(env, key: str) -> str:
    """The SMS gateway's JSON body; its strings may hold {phone}, {message} and {key}."""
    raw = (env.get(key) or "").strip() or DEFAULT_SMS_TEMPLATE
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a JSON object (the gateway's request body): {exc}") from None
    if not isinstance(body, dict):
        raise ConfigError(f"{key} must be a JSON object (the gateway's request body), got {type(body).__name__}")
    used = set()
    for text in _json_strings(body):
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        except ValueError as exc:
            raise ConfigError(f"{key}: bad placeholder in {text!r} ({exc}); write {{{{ for a literal brace") from None
        unknown = names - set(SMS_FIELDS)
        if unknown:
            raise ConfigError(f"{key} may fill in {', '.join('{' + f + '}' for f in SMS_FIELDS)}; "
                              f"it names {', '.join(sorted('{' + n + '}' for n in unknown))}")
        used |= names
    for needed in ("phone", "message"):
        if needed not in used:
            raise ConfigError(f"{key} must put {{{needed}}} somewhere in the body")
    return raw


def _json_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def _dingtalk_robots(env, key: str) -> tuple[DingTalkRobot, ...]:
    """``{"name": {"webhook": "https://oapi.dingtalk.com/robot/send?access_token=…", "secret": "SEC…"}, …}``."""
    raw = (env.get(key) or "").strip()
    if not raw:
        return ()
    try:
        robots = json.loads(raw)
    except ValueError as exc:  # the message names a position, never the secret
        raise ConfigError(f"{key} must be a JSON object of robot name -> {{webhook, secret}}: {exc}") from None
    if not isinstance(robots, dict):
        raise ConfigError(f"{key} must be a JSON object of robot name -> {{webhook, secret}}")
    made = []
    for name, robot in robots.items():
        if not name.strip() or len(name) > 100:
            raise ConfigError(f"{key}: a robot's name must be 1 to 100 characters, got {name!r}")
        if not isinstance(robot, dict) or set(robot) != {"webhook", "secret"}:
            found = sorted(robot) if isinstance(robot, dict) else type(robot).__name__
            raise ConfigError(f"{key}: robot {name!r} must be {{\"webhook\": ..., \"secret\": ...}} and nothing else, "
                              f"got {found}")
        webhook, secret = robot["webhook"], robot["secret"]
        if not isinstance(webhook, str) or urlsplit(webhook).scheme not in ("http", "https") \
                or not urlsplit(webhook).hostname:
            raise ConfigError(f"{key}: robot {name!r} needs an http(s) webhook URL")
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigError(f"{key}: robot {name!r} needs its signing secret (the robot's 加签 secret, SEC…)")
        made.append(DingTalkRobot(name=name, webhook=webhook, secret=secret))
    return tuple(made)


def _choice(env, key: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(key) or "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _time_zone(env, key: str, default: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    raw = (env.get(key) or "").strip() or default
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key} must be an IANA time zone such as Asia/Shanghai, got {raw!r}") from None
    return raw


def local_zone():
    """The configured time zone (``ONEMAP_TIME_ZONE``, default Asia/Shanghai) as a ``ZoneInfo``."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings().time_zone)


def _bool(env, key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")
