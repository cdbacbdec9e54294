"""A device simulator for the demo: door magnets and peephole cameras publishing over MQTT as the real ones would.

``onemap sensors simulate`` runs it against the project's broker (``ONEMAP_MQTT_URL``, default
``mqtt://127.0.0.1:51883``), with the devices' credentials as parameters: one connection per
device signing in as itself (``credentials``: code → password, as the project's broker issues
them, which lets a device write its own topic only), or one connection for all (``username`` and
``password``, for a broker that grants that user every sensor's topic). Every sensor bound to a
person publishes to ``onemap/sensors/{code}/events`` (``docs/care.md``):

- **heartbeats** every ``heartbeat_s`` real seconds, with the battery, which declines a little
  with each simulated day;
- **door openings** (a door_open, a door_close seconds later) on a daily pattern — out in the
  morning, back before noon, an afternoon walk, sometimes an evening — drawn per person and
  played ``speed`` times faster than real time (speed 480: a day in three minutes);
- **sightings** from peephole cameras when the person passes their door;
- a few people **going silent** (``silent``): heartbeats only, no door, no sighting. So that
  a warning and an alert show within minutes, their rule is scaled by the same factor for the
  run (24 h / speed, 48 h / speed; ``care_rule_set``) and put back when the simulator stops.

Timestamps are the real time of sending (the rules compare them with the worker's clock);
``seq`` is the microsecond of sending, so a restarted simulator never repeats one.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlparse

DEFAULT_URL = "mqtt://127.0.0.1:51883"
TOPIC = "onemap/sensors/{code}/events"
DAY_S = 24 * 3600


@dataclass
class Device:
    code: str
    kind: str  # door_magnet | peephole_camera
    subject_id: int
    battery: float
    silent: bool = False
    outings: list[float] = field(default_factory=list)  # simulated seconds of the day a door opens
    last_seq: int = 0


@dataclass
class SimulatorReport:
    devices: int = 0
    silent: list[str] = field(default_factory=list)
    published: int = 0
    by_type: Counter = field(default_factory=Counter)  # what was published, per message type
    unacknowledged: int = 0  # published but never acknowledged by the broker before the end (QoS 1)
    _pending: list = field(default_factory=list, repr=False)  # paho's MQTTMessageInfo of each in flight


def simulate(*, url: str = DEFAULT_URL, username: str | None = None, password: str | None = None,
             credentials: dict[str, str] | None = None, speed: float = 480.0, heartbeat_s: float = 60.0,
             silent: int = 2, duration_s: float | None = None, seed: int = 16, log=print) -> SimulatorReport:
    """Publish until stopped (or ``duration_s``); the people made silent get their own rule back at the end."""
    import paho.mqtt.client as mqtt

    rng = random.Random(seed)
    devices, silent_subjects = _devices(rng, silent)
    if credentials is not None:
        missing = [d.code for d in devices if d.code not in credentials]
        if missing:
            raise ValueError(f"no credentials for {len(missing)} sensors (e.g. {', '.join(missing[:3])})")
        clients = {d.code: _connect(mqtt, url, d.code, credentials[d.code]) for d in devices}
    else:
        shared = _connect(mqtt, url, username, password)
        clients = {d.code: shared for d in devices}
    report = SimulatorReport(devices=len(devices), silent=[s for s, _ in silent_subjects])
    rules = _compress_rules(silent_subjects, speed)
    log(f"simulating {len(devices)} sensors at {speed:g}× (a day in {DAY_S / speed / 60:.1f} min); silent: "
        f"{', '.join(report.silent) or 'nobody'}")
    started = time.monotonic()
    next_beat = {d.code: started + rng.uniform(0, heartbeat_s) for d in devices}
    day_started = started
    try:
        while duration_s is None or time.monotonic() - started < duration_s:
            now = time.monotonic()
            simulated = (now - day_started) * speed
            if simulated >= DAY_S:  # a new simulated day: new outings, a little less battery
                day_started, simulated = now, 0.0
                for device in devices:
                    device.outings = _outings(rng)
                    device.battery = max(0.0, device.battery - rng.uniform(0.05, 0.4))
            for device in devices:
                if now >= next_beat[device.code]:
                    next_beat[device.code] = now + heartbeat_s
                    report.published += _publish(clients[device.code], device, "heartbeat", report,
                                                 battery=round(device.battery))
                if device.silent:
                    continue
                while device.outings and device.outings[0] <= simulated:
                    device.outings.pop(0)
                    if device.kind == "door_magnet":
                        report.published += _publish(clients[device.code], device, "door_open", report)
                        report.published += _publish(clients[device.code], device, "door_close", report)
                    else:
                        report.published += _publish(clients[device.code], device, "sighting", report, confidence=0.9)
            _pump(set(clients.values()), 0.2)
    except KeyboardInterrupt:
        pass
    finally:
        _drain(set(clients.values()), report)  # every QoS 1 message acknowledged before the connections close
        for client in set(clients.values()):
            client.disconnect()
        _restore_rules(rules)
    log(f"published {report.published} messages")
    return report


def _devices(rng: random.Random, silent: int) -> tuple[list[Device], list[tuple[str, int]]]:
    """The sensors bound to people; the ``silent`` people are those living alone with a door magnet, drawn."""
    from gis.care.models import Sensor

    rows = list(Sensor.objects.filter(care_subject__isnull=False, care_subject__active=True)
                .order_by("code").values_list("code", "kind", "care_subject_id", "care_subject__code", "battery_pct"))
    doors = sorted({(subject_code, subject) for code, kind, subject, subject_code, _ in rows if kind == "door_magnet"})
    chosen = rng.sample(doors, min(silent, len(doors)))
    quiet = {subject for _, subject in chosen}
    devices = [Device(code=code, kind=kind, subject_id=subject, battery=float(battery if battery is not None else 100),
                      silent=subject in quiet, outings=_outings(rng))
               for code, kind, subject, _, battery in rows]
    return devices, chosen


def _outings(rng: random.Random) -> list[float]:
    """Simulated seconds of one day when the door opens: morning out and back, an afternoon walk, maybe evening."""
    hours = [rng.gauss(7.5, 0.7), rng.gauss(10.5, 0.8)]
    if rng.random() < 0.7:
        hours += [rng.gauss(15.0, 1.0), rng.gauss(16.5, 1.0)]
    if rng.random() < 0.3:
        hours.append(rng.gauss(19.5, 0.8))
    return sorted(max(0.0, min(23.99, h)) * 3600 for h in hours)


def _compress_rules(chosen: list[tuple[str, int]], speed: float) -> dict[int, dict]:
    """The silent people's rule scaled by ``speed`` for the run; their rules as they were, to put back."""
    from gis.care.models import CareSubject
    from gis.care.rules import DEFAULT_ALERT_HOURS, DEFAULT_WARN_HOURS
    from gis.care.services import care_rule_set

    before = dict(CareSubject.objects.filter(pk__in=[s for _, s in chosen]).values_list("id", "monitoring_rule"))
    for _, subject in chosen:
        care_rule_set(subject_id=subject, rule={"warn_hours": DEFAULT_WARN_HOURS / speed,
                                                "alert_hours": DEFAULT_ALERT_HOURS / speed})
    return before


def _restore_rules(before: dict[int, dict]) -> None:
    from gis.care.models import CareSubject

    for subject, rule in before.items():
        CareSubject.objects.filter(pk=subject).update(monitoring_rule=rule or {})


def _connect(mqtt, url: str, username: str | None, password: str | None):
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"the broker URL must be mqtt://host:port or mqtts://host:port; got {url!r}")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"onemap-simulator-{random.getrandbits(32):08x}")
    if username or parsed.username:
        client.username_pw_set(username or parsed.username, password or parsed.password)
    if parsed.scheme == "mqtts":
        client.tls_set()
    client.connect(parsed.hostname or "127.0.0.1", parsed.port or (8883 if parsed.scheme == "mqtts" else 1883))
    return client


def _pump(clients: set, seconds: float) -> None:
    """Every connection's network work (sends, acknowledgements, keep-alives) for about ``seconds``, in this
    one thread: hundreds of devices need no thread each."""
    until = time.monotonic() + seconds
    while True:
        for client in clients:
            client.loop(timeout=0)
        if time.monotonic() >= until:
            return
        time.sleep(min(0.05, max(0.0, until - time.monotonic())))


def _drain(clients: set, report: SimulatorReport, timeout_s: float = 60.0) -> None:
    """Pump until the broker has acknowledged everything published (or ``timeout_s``); count what was not."""
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        report._pending = [i for i in report._pending if not i.is_published()]
        if not report._pending:
            break
        _pump(clients, 0.1)
    report.unacknowledged = len(report._pending)


def read_credentials(path) -> dict[str, str]:
    """``CODE PASSWORD`` (or ``CODE:PASSWORD``) per line, as issued by the broker; # starts a comment."""
    found = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        code, _, secret = line.replace(":", " ", 1).partition(" ")
        found[code] = secret.strip()
    return found


def _publish(client, device: Device, kind: str, report: SimulatorReport | None = None, **extra) -> int:
    seq = max(device.last_seq + 1, time.time_ns() // 1000)
    device.last_seq = seq
    body = {"ts": datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds"), "type": kind,
            "seq": seq, **extra}
    info = client.publish(TOPIC.format(code=device.code), json.dumps(body), qos=1)
    if report is not None:
        report.by_type[kind] += 1
        report._pending.append(info)
        if len(report._pending) > 10_000:  # forget what the broker has acknowledged
            report._pending = [i for i in report._pending if not i.is_published()]
    return 1
