"""``onemap sensors``: list, add, bind to a person, health, and the demo's device simulator (``simulate``)."""

from __future__ import annotations

import json
import os

from core.cli import CommandError, setup_django


def register(sub) -> None:
    """Add this group's commands to the ``onemap`` parser."""
    sensors = sub.add_parser("sensors", help="door magnets and peephole cameras: list, add, bind, health, simulate")
    group = sensors.add_subparsers(title="sensor commands", metavar="ACTION")

    listing = group.add_parser("list", help="every sensor: kind, building, bound or not, battery, last heard")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    listing.set_defaults(func=cmd_list)

    add = group.add_parser("add", help="a new sensor at a building (or a position), optionally bound to a person")
    add.add_argument("code", help="e.g. SEN-D-0311")
    add.add_argument("--kind", default="door_magnet", choices=["door_magnet", "peephole_camera", "motion"])
    add.add_argument("--building", help="the building's code (the sensor takes its point)")
    add.add_argument("--lon", type=float)
    add.add_argument("--lat", type=float)
    add.add_argument("--gateway", help="the gateway's code it talks through")
    add.add_argument("--subject", help="the person's code (CS-…) to bind it to")
    add.add_argument("--camera", help="a peephole_camera sensor: the peephole camera (CAM-H-…) whose passes it "
                                      "reports as the person's sightings (onemap vision run)")
    add.set_defaults(func=cmd_add)

    bind = group.add_parser("bind", help="bind a sensor to a person (their building and point), or --unbind it")
    bind.add_argument("code")
    bind.add_argument("subject", nargs="?", help="the person's code (CS-…)")
    bind.add_argument("--unbind", action="store_true")
    bind.add_argument("--gateway", help="also set the gateway it talks through")
    bind.set_defaults(func=cmd_bind)

    health = group.add_parser("health", help="each sensor's health as the rules see it; open faults")
    health.add_argument("code", nargs="?", help="one sensor only")
    health.add_argument("--json", action="store_true")
    health.add_argument("--problems", action="store_true", help="only the sensors that are not ok")
    health.set_defaults(func=cmd_health)

    sim = group.add_parser("simulate", help="publish door, heartbeat and battery traffic for every bound sensor "
                                            "over MQTT (the demo's devices), time compressed")
    sim.add_argument("--url", default=os.environ.get("ONEMAP_MQTT_URL", ""),
                     help="the broker (default ONEMAP_MQTT_URL, else mqtt://127.0.0.1:51883)")
    sim.add_argument("--username", default=os.environ.get("ONEMAP_MQTT_DEVICE_USERNAME"),
                     help="the devices' broker user (default ONEMAP_MQTT_DEVICE_USERNAME)")
    sim.add_argument("--password", default=os.environ.get("ONEMAP_MQTT_DEVICE_PASSWORD"),
                     help="its password (default ONEMAP_MQTT_DEVICE_PASSWORD)")
    sim.add_argument("--credentials", metavar="FILE",
                     help="each device's password, 'CODE PASSWORD' per line: one connection per device, signed in "
                          "as itself (the project's broker lets a device write only its own topic)")
    sim.add_argument("--issue-credentials", action="store_true",
                     help="issue every simulated sensor a fresh password of its own (the broker's ACL lets a device "
                          "write only its own topic) and give them to the project's broker; what `onemap demo` does")
    sim.add_argument("--speed", type=float, default=480.0,
                     help="time compression: simulated seconds per real second (480: a day in 3 minutes; the silent "
                          "people's rule is scaled by it, so their warning shows in 3 minutes, their alert in 6)")
    sim.add_argument("--heartbeat", type=float, default=60.0, help="real seconds between a sensor's heartbeats")
    sim.add_argument("--silent", type=int, default=2, help="people who go silent (heartbeats only)")
    sim.add_argument("--duration", type=float, help="stop after this many real seconds (default: until Ctrl-C)")
    sim.add_argument("--seed", type=int, default=16)
    sim.set_defaults(func=cmd_simulate)

    sensors.set_defaults(func=lambda args: sensors.print_help() or 2)


def cmd_list(args) -> int:
    setup_django()
    from gis.care.models import Sensor

    rows = list(Sensor.objects.order_by("code").values(
        "code", "kind", "status", "battery_pct", "last_heartbeat_at", "last_seen_at", "building__code",
        "gateway__code", "care_subject__code"))
    if args.json:
        print(json.dumps(rows, default=str, ensure_ascii=False, indent=1))
        return 0
    print(f"{'code':<14} {'kind':<16} {'building':<14} {'gateway':<12} {'bound to':<12} {'batt':>4}  last heard")
    for r in rows:
        heard = max(filter(None, (r["last_heartbeat_at"], r["last_seen_at"])), default=None)
        print(f"{r['code']:<14} {r['kind']:<16} {r['building__code'] or '-':<14} {r['gateway__code'] or '-':<12} "
              f"{r['care_subject__code'] or '-':<12} {r['battery_pct'] if r['battery_pct'] is not None else '-':>4}  "
              f"{heard.isoformat(timespec='seconds') if heard else 'never'}")
    print(f"{len(rows)} sensors")
    return 0


def cmd_add(args) -> int:
    setup_django()
    from gis.care.services import sensor_add
    from gis.services import ServiceError

    try:
        sensor = sensor_add(code=args.code, kind=args.kind, building_code=args.building, lon=args.lon, lat=args.lat,
                            gateway_code=args.gateway, subject_code=args.subject, camera_code=args.camera)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    print(f"added {sensor.code} ({sensor.kind})" + (f", bound to {args.subject}" if args.subject else ""))
    return 0


def cmd_bind(args) -> int:
    if bool(args.subject) == bool(args.unbind):
        raise CommandError("name the person to bind to, or --unbind")
    setup_django()
    from gis.care.services import sensor_bind
    from gis.services import ServiceError

    try:
        sensor = sensor_bind(sensor_code=args.code, subject_code=None if args.unbind else args.subject,
                             gateway_code=args.gateway)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    print(f"{sensor.code} " + ("unbound" if args.unbind else f"bound to {args.subject}"))
    return 0


def cmd_health(args) -> int:
    setup_django()
    from django.utils import timezone

    from gis.care.selectors import sensors_health

    rows = sensors_health(now=timezone.now(), code=args.code)
    if args.code and not rows:
        raise CommandError(f"there is no sensor {args.code}")
    if args.problems:
        rows = [r for r in rows if r["health"] != "ok" or r["fault"]]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["health"]] = counts.get(r["health"], 0) + 1
        print(f"{r['code']:<14} {r['health']:<14} {r['fault'] or '':<16} batt {r['battery_pct'] if r['battery_pct'] is not None else '-':>3}  "
              f"{r['building'] or ''}")
    print(", ".join(f"{n} {health}" for health, n in sorted(counts.items())) or "no sensors")
    return 0


def _issue_credentials() -> dict[str, str]:
    """A fresh password for every sensor bound to a person, given to the project's own broker."""
    from gis.care.credentials import credential_issue
    from gis.care.models import Sensor
    from host.cli.broker import sync_embedded_passwords

    codes = Sensor.objects.filter(care_subject__isnull=False).order_by("code").values_list("code", flat=True)
    issued = {code: credential_issue(code=code, kind="sensor") for code in codes}
    if not sync_embedded_passwords():
        raise CommandError("--issue-credentials gives the passwords to the project's own broker; with "
                           "ONEMAP_MQTT_URL set, use --credentials FILE with the passwords that broker knows")
    return issued


def _broker_url() -> str | None:
    """mqtt://host:port of the broker the project uses (its own, or ONEMAP_MQTT_URL's)."""
    from core.settings import settings as current_settings

    current = current_settings()
    if current.mqtt.url is not None:
        return f"mqtt://{current.mqtt.url.host}:{current.mqtt.url.port}"
    from host.mqtt_broker import broker_from_settings

    return f"mqtt://127.0.0.1:{broker_from_settings(current).port}"


def cmd_simulate(args) -> int:
    if args.speed <= 0 or args.heartbeat <= 0:
        raise CommandError("--speed and --heartbeat must be positive")
    setup_django()
    from data.sensor_simulator import DEFAULT_URL, read_credentials, simulate

    from core.children import die_with_parent

    die_with_parent(on_orphan=lambda: os.kill(os.getpid(), 15))  # a child of `onemap demo` ends with it
    try:
        credentials = read_credentials(args.credentials) if args.credentials else None
        if args.issue_credentials:
            credentials = _issue_credentials()
        simulate(url=args.url or _broker_url() or DEFAULT_URL, username=args.username, password=args.password,
                 credentials=credentials, speed=args.speed,
                 heartbeat_s=args.heartbeat, silent=args.silent, duration_s=args.duration, seed=args.seed)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot publish to {args.url or DEFAULT_URL}: {exc}") from None
    return 0
