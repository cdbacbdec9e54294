"""The embedded default database: a project-local PostgreSQL + PostGIS under ``.var/``.

``onemap db start`` runs ``initdb`` once, then starts the cluster listening on a
unix socket in ``.var/pg/run`` and on ``127.0.0.1:ONEMAP_DB_PORT``; it creates
the ``onemap`` database with PostGIS (and pgRouting where installed). Starting a
running cluster is a no-op, so every command may call :func:`ensure_running`.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from core.settings import EMBEDDED_DB_NAME as DB_NAME
from core.settings import EMBEDDED_DB_USER as DB_USER
from core.settings import (
    OnemapSettings,
    embedded_database_url,
    settings,
    with_database_name,
)

INSTALL_HINT = (
    "sudo apt-get install postgresql postgresql-15-postgis-3 postgresql-15-pgrouting "
    "(or run `make demo`, which installs what is missing)"
)

# Tuned for a 2-core, 24 GiB development machine; loaded as an include file so a
# port change needs no initdb.
_SERVER_SETTINGS = """\
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 200
shared_buffers = '1GB'
work_mem = '32MB'
maintenance_work_mem = '1GB'
effective_cache_size = '8GB'
max_wal_size = '8GB'
checkpoint_timeout = '15min'
# durable by default: a commit is acknowledged after its WAL is flushed, so it survives a crash;
# ONEMAP_DB_SYNCHRONOUS_COMMIT=off trades the last fraction of a second of commits for speed
synchronous_commit = {synchronous_commit}
jit = off
random_page_cost = 1.1
log_min_duration_statement = 2000
"""


class EmbeddedDatabaseError(RuntimeError):
    """The embedded cluster cannot be set up or started; the message says why and what to do."""


@dataclass(frozen=True)
class ClusterStatus:
    running: bool
    initialised: bool
    port: int
    data_dir: Path
    url: str | None
    pid: int | None


class EmbeddedCluster:
    """A PostgreSQL cluster owned by this checkout, kept in ``<var_dir>/pg``."""

    def __init__(self, var_dir: Path, port: int, *, synchronous_commit: str = "on"):
        self.root = Path(var_dir) / "pg"
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_file = self.root / "postgresql.log"
        self.password_file = self.root / "password"
        self.port = port
        self.synchronous_commit = synchronous_commit
        self._log = print

    # -- public entry points -------------------------------------------------

    def start(self, *, log=print) -> ClusterStatus:
        """Initialise (once), start (unless running) and prepare the ``onemap`` database."""
        self._log = log
        bindir = find_postgres_bindir()
        if not self.initialised:
            log(f"initialising PostgreSQL cluster in {self.data_dir} ...")
            self._initdb(bindir)
        changed = self._write_server_settings()
        if not self._is_running(bindir):
            self._check_port_free()
            log(f"starting PostgreSQL on 127.0.0.1:{self.port} (socket {self.socket_dir}) ...")
            self._pg_ctl(bindir, "start", "-w", "-t", "120", "-l", str(self.log_file))
        elif changed:  # e.g. ONEMAP_DB_SYNCHRONOUS_COMMIT changed: reloadable without a restart
            log("PostgreSQL settings changed; reloading them ...")
            self._pg_ctl(bindir, "reload")
        self.create_database(DB_NAME)
        return self.status()

    def stop(self, *, log=print) -> ClusterStatus:
        bindir = find_postgres_bindir()
        if self.initialised and self._is_running(bindir):
            log("stopping PostgreSQL ...")
            self._pg_ctl(bindir, "stop", "-w", "-t", "120", "-m", "fast")
        return self.status()

    def status(self) -> ClusterStatus:
        running = False
        pid = None
        if self.initialised:
            try:
                running = self._is_running(find_postgres_bindir())
            except EmbeddedDatabaseError:
                running = False
            pid_file = self.data_dir / "postmaster.pid"
            if running and pid_file.exists():
                pid = int(pid_file.read_text().split("\n", 1)[0])
        return ClusterStatus(
            running=running,
            initialised=self.initialised,
            port=self.port,
            data_dir=self.data_dir,
            url=self.url() if self.initialised else None,
            pid=pid,
        )

    def url(self, dbname: str = DB_NAME) -> str:
        return embedded_database_url(self.root.parent, self.port, dbname)

    def create_database(self, name: str) -> None:
        """Create ``name`` with PostGIS (and pgRouting) unless it exists."""
        prepare_database(self.url("postgres"), name)

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    # -- helpers ----------------------------------------------------------------

    def _initdb(self, bindir: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedDatabaseError(
                f"{self.data_dir} exists but holds no cluster; move it away and run `onemap db start` again"
            )
        self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        self.password_file.chmod(0o600)
        self.data_dir.mkdir(exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._hand_over_to_server_user()
        pwfile = self.root / ".initdb-pw"
        shutil.copyfile(self.password_file, pwfile)
        self._chown(pwfile)
        try:
            self._run_as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D", str(self.data_dir),
                    "-U", DB_USER,
                    "-E", "UTF8",
                    "--locale=C.UTF-8",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\ninclude_if_exists = 'onemap.conf'\n")

    def _write_server_settings(self) -> bool:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        target = self.data_dir / "onemap.conf"
        text = _SERVER_SETTINGS.format(port=self.port, socket_dir=self.socket_dir,
                                       synchronous_commit=self.synchronous_commit)
        changed = not target.exists() or target.read_text() != text
        if changed:
            target.write_text(text)
        self._chown(target)
        self._chown(self.socket_dir)
        return changed

    def _is_running(self, bindir: Path) -> bool:
        result = self._run_as_server_user(
            [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "status"], check=False
        )
        return result.returncode == 0

    def _pg_ctl(self, bindir: Path, *args: str) -> None:
        result = self._run_as_server_user(
            [str(bindir / "pg_ctl"), "-D", str(self.data_dir), *args], check=False
        )
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
            raise EmbeddedDatabaseError(
                f"pg_ctl {args[0]} failed ({result.returncode}): {result.stderr.strip()}\n"
                f"last lines of {self.log_file}:\n{tail}"
            )

    def _check_port_free(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                raise EmbeddedDatabaseError(
                    f"port 127.0.0.1:{self.port} is taken by another program; "
                    "set ONEMAP_DB_PORT to a free port, or point ONEMAP_DATABASE_URL at your PostGIS"
                ) from None

    # PostgreSQL refuses to run as root; as root we run it as the 'postgres' user.
    def _server_user(self) -> tuple[str, str] | None:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return name, grp.getgrgid(entry.pw_gid).gr_name
        raise EmbeddedDatabaseError("running as root and no 'postgres' user exists to run the server")

    def _hand_over_to_server_user(self) -> None:
        if self._server_user() is None:
            return
        for path in [self.root, *self.root.rglob("*")]:
            if path != self.password_file:
                self._chown(path)
        # the server user must reach .var/pg through the checkout
        for parent in self.root.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                self._log(f"granting search permission (o+x) on {parent} so the 'postgres' user reaches {self.root}")
                parent.chmod(mode | 0o001)

    def _chown(self, path: Path) -> None:
        user = self._server_user()
        if user is not None:
            shutil.chown(path, user=user[0], group=user[1])

    def _run_as_server_user(self, args: list[str], *, check: bool = True):
        user = self._server_user()
        kwargs = {}
        if user is not None:
            kwargs = {"user": user[0], "group": user[1], "extra_groups": [], "cwd": str(self.root)}
        result = subprocess.run(args, capture_output=True, text=True, **kwargs)
        if check and result.returncode != 0:
            raise EmbeddedDatabaseError(f"{Path(args[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result


def prepare_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server of ``server_url`` with its extensions, if missing."""
    import psycopg
    from psycopg import sql

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(server_url, autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise EmbeddedDatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
            time.sleep(0.5)
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    create_extensions(server_url.rsplit("/", 1)[0] + "/" + name)


def recreate_database(server_url: str, name: str) -> str:
    """Drop ``name`` (ending its sessions) and create it afresh with its extensions; returns its URL."""
    import psycopg
    from psycopg import sql

    admin_url = with_database_name(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    prepare_database(admin_url, name)
    return with_database_name(server_url, name)


def create_extensions(url: str) -> list[str]:
    """Create PostGIS (required) and pgRouting (when installed) in the database at ``url``."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        available = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM pg_available_extensions WHERE name IN ('postgis', 'pgrouting')"
            )
        }
        if "postgis" not in available:
            raise EmbeddedDatabaseError(f"PostGIS is not installed for this PostgreSQL; install it: {INSTALL_HINT}")
        created = ["postgis"]
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        if "pgrouting" in available:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
            created.append("pgrouting")
    return created


def find_postgres_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, newest version first."""
    override = os.environ.get("ONEMAP_PG_BINDIR")
    if override:
        if all((Path(override) / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(override)
        raise EmbeddedDatabaseError(
            f"ONEMAP_PG_BINDIR={override} holds no initdb/pg_ctl/postgres; unset it, or install PostgreSQL: {INSTALL_HINT}"
        )
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for candidate in candidates:
        if all((candidate / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return candidate
    raise EmbeddedDatabaseError(f"PostgreSQL server programs (initdb, pg_ctl) not found; install them: {INSTALL_HINT}")


def cluster_from_settings(current: OnemapSettings | None = None) -> EmbeddedCluster:
    current = current or settings()
    return EmbeddedCluster(current.var_dir, current.db_port, synchronous_commit=current.synchronous_commit)


def ensure_running(*, log=print) -> str:
    """Start the embedded cluster when it is the configured database; return the database URL."""
    current = settings()
    if current.database_url:
        return current.database_url
    cluster = cluster_from_settings(current)
    cluster.start(log=log)
    return cluster.url()
