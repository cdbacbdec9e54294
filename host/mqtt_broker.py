"""The embedded sensor broker: a project-local Mosquitto under ``.var/mqtt``, like the embedded PostgreSQL.

``onemap broker start`` writes ``mosquitto.conf`` (a loopback listener on ``ONEMAP_MQTT_PORT``,
persistence in ``.var/mqtt/data``, no anonymous clients, the password file and the ACL), then
starts Mosquitto as a daemon with a pid file. Devices sign in with their own credentials
(``gis.care.credentials``) and may publish only to their own topic; the ingest signs in as
``onemap-ingest`` (its password generated once into ``.var/mqtt/ingest-password``) and reads
``onemap/#``. With ``ONEMAP_MQTT_URL`` set, the project starts no broker and uses that one.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from core.settings import MqttBroker, OnemapSettings, settings

INGEST_USER = "onemap-ingest"
INSTALL_HINT = "sudo apt-get install mosquitto mosquitto-clients (or run `make demo`, which installs what is missing)"

# a device writes its own topic only (username = its code: gis.care.credentials keeps codes free of / + #);
# the ingest reads them all
_ACL = """\
# written by onemap (host/mqtt_broker.py); edits are overwritten
user {ingest_user}
topic read onemap/#

pattern write onemap/sensors/%u/events
pattern write onemap/gateways/%u/status
{extra}"""

_CONF = """\
# written by onemap (host/mqtt_broker.py); edits are overwritten
per_listener_settings false
listener {port} 127.0.0.1
allow_anonymous false
password_file {passwords}
acl_file {acl}

# messages for a persistent session (the ingest's) survive a restart: saved on a clean stop, and
# every {autosave_s} s while running
persistence true
persistence_location {data_dir}/
autosave_interval {autosave_s}
autosave_on_changes false
persistent_client_expiration 14d

# the ingest acknowledges a message after it is committed and commits in batches: many may be in flight
max_inflight_messages 0
max_inflight_bytes 0
max_queued_messages 2000000
max_queued_bytes 0
max_packet_size 65600
set_tcp_nodelay true

pid_file {pid_file}
log_dest file {log_file}
log_type error
log_type warning
log_type notice
log_timestamp_format %Y-%m-%dT%H:%M:%S
connection_messages true
"""


class BrokerError(RuntimeError):
    """The embedded broker cannot be set up or started; the message says why and what to do."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    port: int
    pid: int | None
    root: Path


class EmbeddedBroker:
    """A Mosquitto owned by this checkout, kept in ``<var_dir>/mqtt``."""

    def __init__(self, var_dir: Path, port: int, *, autosave_s: int = 1, extra_acl: str = ""):
        self.root = Path(var_dir) / "mqtt"
        self.data_dir = self.root / "data"
        self.conf_file = self.root / "mosquitto.conf"
        self.acl_file = self.root / "acl"
        self.password_file = self.root / "passwords"
        self.ingest_password_file = self.root / "ingest-password"
        self.pid_file = self.root / "mosquitto.pid"
        self.log_file = self.root / "mosquitto.log"
        self.port = port
        self.autosave_s = autosave_s
        self.extra_acl = extra_acl

    # -- public entry points -------------------------------------------------

    def start(self, *, device_lines: list[str] | None = None, log=print, timeout_s: float = 15) -> BrokerStatus:
        """Write the configuration and the password file, and start Mosquitto unless it runs."""
        binary = find_mosquitto()
        self._write_files(device_lines or [])
        if self.status().running:
            self.reload()
            return self.status()
        self._check_port_free()
        log(f"starting Mosquitto on 127.0.0.1:{self.port} ({self.root}) ...")
        self.pid_file.unlink(missing_ok=True)
        result = subprocess.run([str(binary), "-c", str(self.conf_file), "-d"], capture_output=True, text=True,
                                cwd=str(self.root))
        if result.returncode != 0:
            raise BrokerError(f"mosquitto failed to start ({result.returncode}): "
                              f"{(result.stderr or result.stdout).strip()}\n{self._log_tail()}")
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if time.monotonic() > deadline:
                raise BrokerError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout_s:.0f} s\n"
                                  f"{self._log_tail()}")
            time.sleep(0.05)
        return self.status()

    def stop(self, *, log=print, timeout_s: float = 30) -> BrokerStatus:
        """Stop Mosquitto cleanly (it saves its persistence on the way out); SIGKILL after ``timeout_s``."""
        pid = self._pid()
        if pid is not None:
            log("stopping Mosquitto ...")
            self._signal(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout_s):
                self._signal(pid, signal.SIGKILL)
                _wait_gone(pid, 10)
            self.pid_file.unlink(missing_ok=True)
        return self.status()

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing saved since the last autosave."""
        pid = self._pid()
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            _wait_gone(pid, 10)

    def status(self) -> BrokerStatus:
        pid = self._pid()
        return BrokerStatus(running=pid is not None, port=self.port, pid=pid, root=self.root)

    def write_passwords(self, device_lines: list[str]) -> bool:
        """Write the password file (the ingest and every device); True when it changed."""
        lines = [f"{INGEST_USER}:{_digest(self.ingest_password())}", *device_lines]
        text = "\n".join(lines) + "\n"
        if self.password_file.exists() and self.password_file.read_text() == text:
            return False
        tmp = self.password_file.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(text)
        self._chown(tmp)
        tmp.replace(self.password_file)
        return True

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password file and ACL again (connected clients stay)."""
        pid = self._pid()
        if pid is not None:
            self._signal(pid, signal.SIGHUP)

    def ingest_password(self) -> str:
        """The ingest's password, generated once and kept (0600) in ``ingest-password``."""
        if not self.ingest_password_file.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self.ingest_password_file.touch(mode=0o600)
            self.ingest_password_file.write_text(secrets.token_urlsafe(24) + "\n")
        return self.ingest_password_file.read_text().strip()

    def connection(self) -> MqttBroker:
        """How the ingest reaches this broker."""
        return MqttBroker(host="127.0.0.1", port=self.port, username=INGEST_USER, password=self.ingest_password())

    # -- helpers ----------------------------------------------------------------

    def _write_files(self, device_lines: list[str]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(_CONF.format(
            port=self.port, passwords=self.password_file, acl=self.acl_file, data_dir=self.data_dir,
            autosave_s=self.autosave_s, pid_file=self.pid_file, log_file=self.log_file))
        self.acl_file.write_text(_ACL.format(ingest_user=INGEST_USER, extra=self.extra_acl))
        self.write_passwords(device_lines)
        self.log_file.touch()
        for path in (self.root, self.data_dir, self.conf_file, self.acl_file, self.log_file, *self.data_dir.iterdir()):
            self._chown(path)
        self._grant_search()

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"mosquitto" in cmdline and str(self.conf_file).encode() in cmdline else None

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return self._pid() is not None
        return False

    def _check_port_free(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                raise BrokerError(f"port 127.0.0.1:{self.port} is taken by another program; set ONEMAP_MQTT_PORT "
                                  "to a free port, or point ONEMAP_MQTT_URL at your broker") from None

    def _log_tail(self, lines: int = 15) -> str:
        if not self.log_file.exists():
            return ""
        tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return f"last lines of {self.log_file}:\n{tail}"

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    # As root, Mosquitto drops to the 'mosquitto' user: it must own its files and reach them.
    @staticmethod
    def _server_user() -> tuple[str, str] | None:
        if os.geteuid() != 0:
            return None
        for name in ("mosquitto", "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return name, grp.getgrgid(entry.pw_gid).gr_name
        return None

    def _chown(self, path: Path) -> None:
        user = self._server_user()
        if user is not None:
            shutil.chown(path, user=user[0], group=user[1])

    def _grant_search(self) -> None:
        if self._server_user() is None:
            return
        for parent in self.root.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)


def find_mosquitto() -> Path:
    """The ``mosquitto`` program (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto") or next(
        (str(p) for p in (Path("/usr/sbin/mosquitto"), Path("/usr/local/sbin/mosquitto")) if p.exists()), None)
    if found is None:
        raise BrokerError(f"mosquitto is not installed; install it: {INSTALL_HINT}")
    return Path(found)


def broker_from_settings(current: OnemapSettings | None = None) -> EmbeddedBroker:
    current = current or settings()
    return EmbeddedBroker(current.var_dir, current.mqtt.port)


def broker_connection(current: OnemapSettings | None = None) -> MqttBroker:
    """Where the ingest connects: ``ONEMAP_MQTT_URL``, else the embedded broker."""
    current = current or settings()
    return current.mqtt.url or broker_from_settings(current).connection()


def _digest(password: str) -> str:
    """The ingest's digest, salted from its own (random) password so that rewriting the file changes nothing."""
    import hashlib

    from gis.care.passwords import SALT_BYTES, password_digest

    return password_digest(password, salt=hashlib.sha256(password.encode()).digest()[:SALT_BYTES])


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        with contextlib.suppress(OSError):  # a zombie of ours
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                return True
        time.sleep(0.05)
    return False
