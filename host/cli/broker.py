"""``onemap broker``, ``onemap ingest``: the sensors' MQTT broker, devices' credentials and the ingest.

``onemap broker start|stop|status`` runs the project's own Mosquitto under ``.var/mqtt``
(``host.mqtt_broker``); ``onemap broker sync`` writes its password file from the database and
makes it read it again; ``onemap broker credentials CODE`` issues (or replaces) a device's
password and prints it once. ``onemap ingest`` is the consumer (``host.ingest``). With
``ONEMAP_MQTT_URL`` set, no broker is started here and the ingest connects to that one.
"""

from __future__ import annotations

import os
import subprocess
import sys

from core.cli import CommandError, setup_django


def register(sub) -> None:
    """Add this group's commands to the ``onemap`` parser."""
    broker = sub.add_parser("broker", help="the sensors' MQTT broker (Mosquitto under .var/mqtt) and devices' passwords")
    actions = broker.add_subparsers(title="actions", metavar="ACTION")
    for action, text in (("start", "start the broker (writing its configuration and password file)"),
                         ("stop", "stop the broker (it saves its persistence first)"),
                         ("status", "is it running, and where"),
                         ("sync", "write the password file from the database; the running broker reads it again")):
        p = actions.add_parser(action, help=text)
        p.set_defaults(func=cmd_broker, action=action)
    cred = actions.add_parser("credentials", help="issue or replace a device's password (printed once)")
    cred.add_argument("code", help="the sensor's code (its MQTT username), or the gateway's with --gateway")
    cred.add_argument("--gateway", action="store_true", help="CODE is a gateway")
    cred.set_defaults(func=cmd_credentials)
    broker.set_defaults(func=lambda args: broker.print_help() or 2)

    ingest = sub.add_parser("ingest", help="consume the sensors' MQTT topics into the database (a long-running process)")
    ingest.add_argument("--client-id", default=None,
                        help="its MQTT client id, which names its persistent session at the broker "
                             "(default onemap-ingest; one process per id)")
    ingest.set_defaults(func=cmd_ingest)


def cmd_broker(args) -> int:
    from core.settings import settings as current_settings
    from host.mqtt_broker import BrokerError, broker_from_settings

    current = current_settings()
    if current.mqtt.url and args.action in {"start", "stop", "sync"}:
        print(f"ONEMAP_MQTT_URL is set; the project uses the broker at {current.mqtt.url.host}:{current.mqtt.url.port}, "
              "not its own (its passwords and ACL are yours to keep).")
        return 0
    broker = broker_from_settings(current)
    try:
        if args.action == "start":
            status = broker.start(device_lines=device_password_lines())
        elif args.action == "stop":
            status = broker.stop()
        elif args.action == "sync":
            changed = broker.write_passwords(device_password_lines())
            broker.reload()
            print(f"password file {'rewritten' if changed else 'unchanged'}: {broker.password_file}")
            status = broker.status()
        else:
            status = broker.status()
    except BrokerError as exc:
        raise CommandError(str(exc)) from None
    print(f"embedded Mosquitto: {'running' if status.running else 'stopped'}  port {status.port}  dir {status.root}")
    if status.running:
        print(f"  pid {status.pid}; devices publish to onemap/sensors/CODE/events as user CODE "
              "(onemap broker credentials CODE)")
    return 0 if (status.running or args.action in {"stop", "status"}) else 1


def cmd_credentials(args) -> int:
    setup_django()
    from core.settings import settings as current_settings
    from gis.care.credentials import credential_issue
    from gis.services import ServiceError

    try:
        password = credential_issue(code=args.code, kind="gateway" if args.gateway else None)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    if not sync_embedded_passwords():
        print("ONEMAP_MQTT_URL is set: add this password to that broker yourself", file=sys.stderr)
    print(password)
    return 0


def sync_embedded_passwords() -> bool:
    """Rewrite the embedded broker's password file from the database and have it read it again.

    False (nothing done) when ``ONEMAP_MQTT_URL`` points at another broker, whose passwords are
    its operator's to keep.
    """
    from core.settings import settings as current_settings
    from host.mqtt_broker import broker_from_settings

    current = current_settings()
    if current.mqtt.url is not None:
        return False
    broker = broker_from_settings(current)
    broker.write_passwords(device_password_lines())
    broker.reload()
    return True


def cmd_ingest(args) -> int:
    setup_django()
    _check_schema()
    from core.settings import settings as current_settings
    from host.ingest import CLIENT_ID, run_ingest
    from host.mqtt_broker import broker_connection
    from core.children import die_with_parent

    die_with_parent(on_orphan=lambda: os.kill(os.getpid(), 15))
    current = current_settings()
    run_ingest(broker=broker_connection(current), limits=current.mqtt, client_id=args.client_id or CLIENT_ID,
               log=lambda line: print(line, flush=True))
    return 0


def device_password_lines() -> list[str]:
    """The devices' lines of the password file; none while the database has no schema yet."""
    setup_django()
    from django.db import connection

    if "device_credentials" not in connection.introspection.table_names():
        return []
    from gis.care.credentials import password_file_lines

    return password_file_lines()


def start_broker(*, log_progress: bool = False) -> None:
    """Start the embedded broker unless ``ONEMAP_MQTT_URL`` points elsewhere (``onemap demo``)."""
    from core.settings import settings as current_settings
    from host.mqtt_broker import BrokerError, broker_from_settings

    current = current_settings()
    if current.mqtt.url is not None:
        return
    try:
        broker_from_settings(current).start(device_lines=device_password_lines(),
                                            log=lambda msg: print("  " + msg, flush=True) if log_progress else None)
    except BrokerError as exc:
        raise CommandError(str(exc)) from None


def start_ingest_beside_server() -> subprocess.Popen:
    """``onemap ingest`` as a child of this process (the server's main one), ending when this process ends."""
    return _child("ingest")


def start_simulator_beside_server() -> subprocess.Popen:
    """The demo's device traffic (``onemap sensors simulate --issue-credentials``) as a child of this process."""
    return _child("sensors", "simulate", "--issue-credentials")


def _child(*command: str) -> subprocess.Popen:
    from core.children import PARENT_ENV

    env = dict(os.environ, **{PARENT_ENV: str(os.getpid())})
    return subprocess.Popen([sys.executable, "-m", "host.cli", *command], env=env)


def _check_schema() -> None:
    from django.db import connection

    missing = {"sensor_events", "sensor_rejects"} - set(connection.introspection.table_names())
    connection.close()
    if missing:
        raise CommandError(f"the database has no {', '.join(sorted(missing))} yet: run `onemap migrate` first")
