"""``onemap ingest``: the long-running consumer of the sensors' MQTT topics.

It keeps one persistent MQTT 5 session (client id ``onemap-ingest``, clean start off, a session
that never expires), subscribed with QoS 1 to ``onemap/sensors/+/events`` and
``onemap/gateways/+/status``. Messages are gathered into batches and written by
``gis.care.ingest.events_record`` in one transaction each; a message is acknowledged (PUBACK,
paho's manual ack) only after its batch is committed, so one that was received but not committed
when the ingest, the broker or the database went down is delivered again and stored once
(``(sensor, seq)`` is unique). While the database is unreachable the batch is retried with a
back-off and nothing is acknowledged: the broker keeps the rest.

A device that sends more than its share (a token bucket per device: ``ONEMAP_INGEST_RATE`` a
second kept up, ``ONEMAP_INGEST_BURST`` at once) has the excess dropped, acknowledged and
counted, so it cannot hold up the others. A rejected message (not JSON, a missing or wrong
field, an unknown sensor, a clock far ahead) is logged with its reason and written to
``sensor_rejects``; nothing a device sends stops the consumer.
"""

from __future__ import annotations

import contextlib
import queue
import re
import signal
import threading
import time
from dataclasses import dataclass

from core.settings import MqttBroker, MqttSettings

CLIENT_ID = "onemap-ingest"
SENSOR_TOPIC = "onemap/sensors/+/events"
GATEWAY_TOPIC = "onemap/gateways/+/status"
_TOPIC = re.compile(r"onemap/(sensors|gateways)/([^/]+)/(events|status)")


@dataclass
class _Received:
    generation: int  # the connection it came on: an ack is sent on that connection only
    mid: int
    qos: int
    message: object  # gis.care.ingest.DeviceMessage


@dataclass
class _Tally:
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    gateways: int = 0

    def any(self) -> bool:
        return bool(self.inserted or self.duplicates or self.rejected or self.gateways)


class Ingest:
    """The consumer: paho's network thread receives, the calling thread commits and acknowledges."""

    def __init__(self, *, broker: MqttBroker, limits: MqttSettings, client_id: str = CLIENT_ID, log=print):
        self.broker, self.limits, self.client_id, self.log = broker, limits, client_id, log
        from gis.care.ingest import TokenBucket

        self.bucket = TokenBucket(limits.rate_per_s, limits.burst)
        self.received: queue.SimpleQueue[_Received] = queue.SimpleQueue()
        self.generation = 0
        self.stopping = threading.Event()
        self.tally = _Tally()
        self._limited: dict[str, int] = {}  # device -> messages dropped since the last summary
        self._limited_lock = threading.Lock()
        self._client = None

    # -- public entry ----------------------------------------------------------

    def run(self) -> None:
        """Connect, then commit batches until :meth:`stop`; the session stays at the broker."""
        self._client = self._connect()
        last_summary = time.monotonic()
        try:
            while not self.stopping.is_set():
                batch = self._take_batch()
                if batch:
                    self._commit(batch)
                if time.monotonic() - last_summary >= self.limits.summary_s:
                    self._summarise()
                    last_summary = time.monotonic()
        finally:
            self._summarise()
            self._client.disconnect()
            self._client.loop_stop()

    def stop(self) -> None:
        self.stopping.set()

    # -- MQTT ------------------------------------------------------------------

    def _connect(self):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0xFFFFFFFF  # the session (its subscriptions and queue) never expires
        # room for two whole batches unacknowledged: one being committed, one being gathered
        properties.ReceiveMaximum = min(65535, 2 * self.limits.batch_max)
        client.connect_async(self.broker.host, self.broker.port, keepalive=30, clean_start=False,
                             properties=properties)
        client.loop_start()
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.log(f"ingest: the broker at {self.broker.host}:{self.broker.port} refused us: {reason_code}")
            return
        self.generation += 1
        client.subscribe([(SENSOR_TOPIC, 1), (GATEWAY_TOPIC, 1)])
        self.log(f"ingest: connected to {self.broker.host}:{self.broker.port} as {self.client_id} "
                 f"({'session resumed' if flags.session_present else 'new session'})")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if not self.stopping.is_set():
            self.log(f"ingest: disconnected from the broker ({reason_code}); reconnecting")

    def _on_message(self, client, userdata, msg) -> None:
        from gis.care.ingest import DeviceMessage

        match = _TOPIC.fullmatch(msg.topic)
        kind = "sensor" if match and match.group(1) == "sensors" else "gateway"
        code = match.group(2) if match else msg.topic
        if not self.bucket.allow(f"{kind}:{code}", time.monotonic()):
            with self._limited_lock:
                self._limited[code] = self._limited.get(code, 0) + 1
            client.ack(msg.mid, msg.qos)  # dropped by policy: acknowledged, counted, never queued
            return
        body = msg.payload if match else b"\x00unexpected topic"
        self.received.put(_Received(self.generation, msg.mid, msg.qos,
                                    DeviceMessage(kind=kind, code=code, body=body, source="mqtt")))

    # -- batches -----------------------------------------------------------------

    def _take_batch(self) -> list[_Received]:
        try:
            first = self.received.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.limits.batch_wait_s
        while len(batch) < self.limits.batch_max:
            try:
                batch.append(self.received.get_nowait())
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self.received.get(timeout=left))
                except queue.Empty:
                    break
        return batch

    def _commit(self, batch: list[_Received]) -> None:
        """Write the batch (retrying while the database is away), then acknowledge it."""
        counts = self._record(batch)
        if counts is None:  # stopping while the database was away: the broker delivers these again
            return
        for received in batch:
            if received.generation == self.generation:
                self._client.ack(received.mid, received.qos)

    def _record(self, batch: list[_Received]):
        from django.db import DatabaseError, InterfaceError, OperationalError

        from gis.care.ingest import events_record

        delay, since = 0.2, None
        while True:
            try:
                counts = events_record(messages=[r.message for r in batch], future_s=self.limits.future_s)
            except (OperationalError, InterfaceError) as exc:
                _close_connection()
                if since is None:
                    since = time.monotonic()
                    self.log(f"ingest: the database is unreachable ({str(exc).strip()[:200]}); "
                             f"retrying, nothing acknowledged meanwhile")
                if self.stopping.wait(delay):
                    return None
                delay = min(delay * 2, 5.0)
                continue
            except DatabaseError as exc:  # one message the database refuses: find it, keep the others
                _close_connection()
                if len(batch) == 1:
                    return self._refused(batch[0], exc)
                half = len(batch) // 2
                first, second = self._record(batch[:half]), self._record(batch[half:])
                return None if first is None or second is None else True
            if since is not None:
                self.log(f"ingest: the database is back after {time.monotonic() - since:.1f} s")
            self._count(batch, counts)
            return counts

    def _refused(self, received: _Received, exc: Exception):
        from gis.care.ingest import IngestCounts, rejects_record

        message = received.message
        reason = f"the database refused it: {str(exc).strip().splitlines()[0][:200]}"
        with contextlib.suppress(Exception):
            rejects_record(rows=[(message.source, message.code, reason, "")])
        self.log(f"ingest: rejected a {message.kind} message from {message.code}: {reason}")
        self.tally.rejected += 1
        return IngestCounts(rejected=1)

    def _count(self, batch: list[_Received], counts) -> None:
        self.tally.inserted += counts.inserted
        self.tally.duplicates += counts.duplicates
        self.tally.rejected += counts.rejected
        self.tally.gateways += counts.gateways
        for index, reason in counts.reasons:
            message = batch[index].message
            self.log(f"ingest: rejected a {message.kind} message from {message.code}: {reason}")

    def _summarise(self) -> None:
        from gis.care.ingest import rejects_record

        with self._limited_lock:
            limited, self._limited = self._limited, {}
        if limited:
            rule = f"over {self.limits.rate_per_s:g}/s (burst {self.limits.burst})"
            for code, n in sorted(limited.items()):
                self.log(f"ingest: rate-limited {code}: {n} messages dropped {rule}")
            with contextlib.suppress(Exception):  # the database away: the log line stands
                for code, n in limited.items():
                    rejects_record(rows=[("mqtt", code, f"rate-limited: {rule}", "")], count=n)
        tally = self.tally
        if tally.any() or limited:
            self.log(f"ingest: {tally.inserted} stored, {tally.duplicates} duplicates, {tally.rejected} rejected, "
                     f"{tally.gateways} gateway messages, {sum(limited.values())} rate-limited")
        self.tally = _Tally()


def run_ingest(*, broker: MqttBroker, limits: MqttSettings, client_id: str = CLIENT_ID, log=print) -> None:
    """Run the ingest until SIGTERM or Ctrl-C; the batch in hand is committed and acknowledged first."""
    ingest = Ingest(broker=broker, limits=limits, client_id=client_id, log=log)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: ingest.stop())
    ingest.run()


def _close_connection() -> None:
    from django.db import connection

    with contextlib.suppress(Exception):
        connection.close()
