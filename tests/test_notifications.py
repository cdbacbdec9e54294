"""The notification outbox: notify() with the change, ``onemap worker`` delivering, crashes, retries, dead letters.

A receiving HTTP server started here plays DingTalk robots' webhooks and an SMS gateway. It
checks every DingTalk signature (timestamp within an hour; sign = urlencode(base64(
hmac_sha256(secret, f"{timestamp}\\n{secret}")))) and counts per idempotency key: every
request it got (``hits``), and the deliveries it honoured (``honoured``: a repeated key is
answered OK and not delivered again, as a careful gateway does). The worker is the real
``onemap worker`` in a subprocess over the test database, killed with SIGKILL where a test
says so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"ops": "SECops0123456789", "crash": "SECcrash-2-secret", "flaky": "SECflaky+/=", "storm": "SECstorm"}
# small numbers so the whole module runs in well under a minute
OUTBOX_ENV = {"ONEMAP_OUTBOX_BACKOFF_S": "0.4", "ONEMAP_OUTBOX_MAX_ATTEMPTS": "3", "ONEMAP_OUTBOX_TIMEOUT_S": "2",
              "ONEMAP_OUTBOX_LEASE_S": "3", "ONEMAP_OUTBOX_SWEEP_S": "1"}
KEY_MARK = re.compile(r"〔([^〕]+)〕")


# -- the receiving server ----------------------------------------------------------------------------


@dataclass
class Hit:
    """One request the receiver got."""

    channel: str  # dingtalk | sms
    target: str  # robot name or phone
    key: str  # the Idempotency-Key header
    covered: tuple[str, ...]  # the notifications it carries (several for a summary)
    received: float
    answered: float | None = None
    timestamp_ms: int | None = None  # DingTalk's signed timestamp
    body: dict | None = None


@dataclass
class Receiver:
    """DingTalk robots at ``/robot/send?access_token=<robot>`` and an SMS gateway at ``/sms``."""

    base_url: str = ""
    failing: set = field(default_factory=set)  # targets answered with 500
    slow_s: dict = field(default_factory=dict)  # target -> seconds before answering
    hits: list = field(default_factory=list)
    honoured: Counter = field(default_factory=Counter)  # notification key -> deliveries accepted
    accepted: set = field(default_factory=set)  # idempotency keys answered OK
    bad: list = field(default_factory=list)  # refused signatures and malformed requests
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys_hit(self) -> Counter:
        with self.lock:
            return Counter(hit.key for hit in self.hits)

    def in_flight(self) -> list[Hit]:
        with self.lock:
            return [hit for hit in self.hits if hit.answered is None]

    def for_target(self, target: str) -> list[Hit]:
        with self.lock:
            return [hit for hit in self.hits if hit.target == target]

    def overlapping(self) -> list[str]:
        """Keys sent twice at the same time (two senders holding one notification)."""
        with self.lock:
            hits = sorted(self.hits, key=lambda h: h.received)
        found = []
        for i, one in enumerate(hits):
            for other in hits[i + 1:]:
                if other.key == one.key and one.answered is not None and other.received < one.answered - 0.05:
                    found.append(one.key)
        return found

    # -- answering --

    def handle(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict]:
        parts = urlsplit(handler.path)
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        key = handler.headers.get("Idempotency-Key", "")
        try:
            document = json.loads(body)
        except ValueError:
            self.bad.append(f"not JSON: {body[:100]!r}")
            return 400, {"error": "not JSON"}
        if parts.path == "/robot/send":
            query = parse_qs(parts.query)
            robot = (query.get("access_token") or [""])[0]
            problem = check_signature(parts.query, SECRETS.get(robot))
            if problem:
                self.bad.append(f"{robot}: {problem}")
                return 200, {"errcode": 310000, "errmsg": f"sign not match: {problem}"}
            text = document["text"]["content"]
            member_keys = [KEY_MARK.search(line).group(1) for line in text.splitlines() if line.startswith("•")]
            if KEY_MARK.findall(text)[-1] != key:
                self.bad.append(f"{robot}: the text does not end with the key {key}")
            hit = Hit("dingtalk", robot, key, tuple(member_keys) or (key,), time.monotonic(),
                      timestamp_ms=int(query["timestamp"][0]))
        elif parts.path == "/sms":
            if document.get("request_id") != key or not document.get("phone") or not document.get("message"):
                self.bad.append(f"sms body {document} does not follow the template for key {key}")
            hit = Hit("sms", document.get("phone", ""), key, (key,), time.monotonic(), body=document)
        else:
            return 404, {"error": "no such path"}
        with self.lock:
            self.hits.append(hit)
        time.sleep(self.slow_s.get(hit.target, 0))
        with self.lock:
            hit.answered = time.monotonic()
            if hit.target in self.failing:
                return 500, {"error": "down"}
            if hit.key not in self.accepted:  # a repeated key is answered OK, not delivered again
                for covered in hit.covered:
                    self.honoured[covered] += 1
            self.accepted.add(hit.key)
        return 200, {"errcode": 0, "errmsg": "ok"}


def check_signature(query: str, secret: str | None) -> str | None:
    """None when the request's ``timestamp`` and ``sign`` are DingTalk's for ``secret``, else what is wrong."""
    if secret is None:
        return "unknown robot"
    values = parse_qs(query)
    try:
        timestamp = int(values["timestamp"][0])
        sign = values["sign"][0]  # decoded once by parse_qs
    except (KeyError, ValueError):
        return "no timestamp or sign"
    if abs(time.time() * 1000 - timestamp) > 3600 * 1000:
        return "timestamp more than an hour away"
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest())
    if sign != expected.decode():
        return "sign differs (or was encoded more or less than once)"
    return None


@pytest.fixture(scope="module")
def receiver():
    made = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            status, answer = made.handle(self)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the sender was killed while we waited
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    made.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()


# -- the worker as a process -------------------------------------------------------------------------


class WorkerProcess:
    """``python -m host.cli worker`` over the test database, pointed at the receiver."""

    def __init__(self, receiver: Receiver, *args: str):
        robots = {name: {"webhook": f"{receiver.base_url}/robot/send?access_token={name}", "secret": secret}
                  for name, secret in SECRETS.items()}
        self.env = dict(os.environ, ONEMAP_DINGTALK_ROBOTS=json.dumps(robots), ONEMAP_SMS_URL=f"{receiver.base_url}/sms",
                        **OUTBOX_ENV)
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.args = args
        self.log_path = ROOT / ".var" / f"test-worker-{os.environ.get('ONEMAP_TEST_DATABASE', 'onemap_test')}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.since = self.log_path.stat().st_size if self.log_path.exists() else 0  # earlier runs' lines are not ours
        self.process: subprocess.Popen | None = None

    def start(self, *, ready: bool = True) -> WorkerProcess:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "host.cli", "worker", *self.args], env=self.env,
                                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if ready:
            wait_for(lambda: "working on" in self.log(offset) or self.process.poll() is not None, 60, "the worker to start")
            assert self.process.poll() is None, f"the worker exited: {self.log(offset)[-2000:]}"
        return self

    def log(self, offset: int | None = None) -> str:
        """What the worker wrote since ``offset`` (default: since this object was made; other workers' lines too)."""
        with open(self.log_path, "rb") as log:
            log.seek(self.since if offset is None else offset)
            return log.read().decode(errors="replace")

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return None


@pytest.fixture(scope="module")
def worker(receiver, migrated_db):
    process = WorkerProcess(receiver, "--concurrency", "4").start()
    yield process
    process.stop()


def wait_for(predicate, timeout_s: float, what: str, *, every_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(every_s)


def _key(label: str) -> str:
    return f"test:{label}:{uuid.uuid4().hex[:12]}"


def _states(keys) -> dict[str, str]:
    from gis.models import Notification

    return dict(Notification.objects.filter(key__in=list(keys)).values_list("key", "state"))


def _all_delivered(keys) -> bool:
    states = _states(keys)
    return len(states) == len(keys) and set(states.values()) == {"delivered"}


def _notify(key: str, channel: str, recipient: str, title: str = "巡查提醒", text: str = "请到现场处置") -> bool:
    from gis.notifications.services import notify

    return notify(key=key, channel=channel, recipient=recipient, subject=("case", 42),
                  payload={"title": title, "text": text})


# -- notify(): one row per key, with the caller's transaction -------------------------------------------


def test_worker_once_runs_what_is_due_and_exits(receiver, migrated_db):
    """Before any long-running worker: ``--once`` sends what is due (the sweep it runs finds it) and ends."""
    from django.db import connection

    key = _key("once")
    _notify(key, "sms", "13800000001")
    with connection.cursor() as cursor:  # as if the process died before queueing: only the sweep can find it
        cursor.execute("DELETE FROM procrastinate_jobs WHERE args ->> 'notification_id' = "
                       "(SELECT id::text FROM notifications WHERE key = %s)", [key])
    once = WorkerProcess(receiver, "--once").start(ready=False)
    assert once.process.wait(timeout=60) == 0, once.log()[-2000:]
    assert _states([key]) == {key: "delivered"}
    assert receiver.keys_hit()[key] == 1


def test_the_worker_stops_gracefully_on_sigterm(receiver, migrated_db):
    process = WorkerProcess(receiver).start()
    began = time.monotonic()
    assert process.stop() == 0
    assert time.monotonic() - began < 10
    assert "stopped" in process.log()


def test_one_key_is_one_notification(migrated_db):
    from gis.models import Notification

    key = _key("twice")
    assert _notify(key, "in_app", "test_commander") is True
    assert _notify(key, "in_app", "test_commander", title="another title") is False
    assert Notification.objects.filter(key=key).count() == 1
    assert Notification.objects.get(key=key).payload["title"] == "巡查提醒"


@pytest.mark.parametrize("fields, message", [
    ({"key": ""}, "key"),
    ({"channel": "pigeon"}, "channel must be one of"),
    ({"channel": "sms", "recipient": "Li Wei"}, "phone number"),
    ({"recipient": " "}, "recipient cannot be empty"),
    ({"subject": ("", 1)}, "subject"),
    ({"payload": {"text": "no title"}}, "title"),
    ({"payload": {"title": "t", "at": object()}}, "plain JSON"),
    ({"payload": {"title": "t\x00"}}, "NUL"),
    ({"key": "k" * 201}, "at most 200"),
])
def test_notify_refuses_what_it_cannot_send(migrated_db, fields, message):
    from gis.notifications.services import notify
    from gis.services import ServiceError

    call = {"key": _key("bad"), "channel": "in_app", "recipient": "test_commander", "subject": ("case", 1),
            "payload": {"title": "t"}} | fields
    with pytest.raises(ServiceError, match=message):
        notify(**call)


def test_a_notification_rolled_back_with_its_change_is_never_sent(worker, receiver):
    from django.db import transaction

    from gis.models import Notification

    key = _key("rolled-back")

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        with transaction.atomic():
            assert _notify(key, "sms", "13800000002")
            raise Undo
    time.sleep(2.5)  # more than two sweeps
    assert not Notification.objects.filter(key=key).exists()
    assert receiver.keys_hit()[key] == 0


@pytest.mark.parametrize("role", ["commander", "grid_worker", "anonymous"])
def test_a_scoped_change_can_write_its_notifications(migrated_db, role):
    """Changes made under a request's database role (cases will be) may add outbox rows, and nothing more."""
    from django.db import connection, transaction

    from core.identity import Identity
    from layers.access import scoped_django

    key = _key(f"scoped-{role}")
    with scoped_django(Identity(role=role, username="tester", grid_id=1 if role == "grid_worker" else None)):
        assert _notify(key, "in_app", "test_commander")
        assert _notify(key, "in_app", "test_commander") is False
        with pytest.raises(Exception, match="permission denied"):
            with transaction.atomic(), connection.cursor() as cursor:  # a savepoint: the change goes on
                cursor.execute("SELECT recipient FROM notifications LIMIT 1")
    assert _states([key]) != {}


# -- settings -----------------------------------------------------------------------------------------

ROBOT = '{"ops": {"webhook": "https://oapi.dingtalk.com/robot/send?access_token=t", "secret": "SECabc"}}'


@pytest.mark.parametrize("env, message", [
    ({"ONEMAP_DINGTALK_ROBOTS": "{ops}"}, "must be a JSON object of robot name"),
    ({"ONEMAP_DINGTALK_ROBOTS": '["ops"]'}, "must be a JSON object of robot name"),
    ({"ONEMAP_DINGTALK_ROBOTS": '{"ops": {"webhook": "https://x/send"}}'}, "and nothing else"),
    ({"ONEMAP_DINGTALK_ROBOTS": '{"ops": {"webhook": "ftp://x", "secret": "SECabc"}}'}, "webhook URL"),
    ({"ONEMAP_DINGTALK_ROBOTS": '{"ops": {"webhook": "https://x/send", "secret": ""}}'}, "signing secret"),
    ({"ONEMAP_SMS_URL": "gateway.local/send"}, "http:// or https:// URL"),
    ({"ONEMAP_SMS_TEMPLATE": '{"to": "{phone}"}'}, "must put {message}"),
    ({"ONEMAP_SMS_TEMPLATE": '{"to": "{phone}", "text": "{message}", "x": "{password}"}'}, "names {password}"),
    ({"ONEMAP_SMS_TEMPLATE": '"{phone} {message}"'}, "must be a JSON object"),
    ({"ONEMAP_SMS_TEMPLATE": '{"to": "{phone", "text": "{message}"}'}, "bad placeholder"),
    ({"ONEMAP_OUTBOX_BACKOFF_S": "soon"}, "must be a number"),
    ({"ONEMAP_OUTBOX_MAX_ATTEMPTS": "0"}, "between 1 and 100"),
    ({"ONEMAP_OUTBOX_SWEEP_S": "90"}, "between 1 and 60"),
    ({"ONEMAP_OUTBOX_TIMEOUT_S": "30", "ONEMAP_OUTBOX_LEASE_S": "20"}, "must be longer than ONEMAP_OUTBOX_TIMEOUT_S"),
])
def test_a_setting_it_cannot_use_stops_the_start_with_a_reason(env, message):
    from core.settings import ConfigError, OnemapSettings

    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        OnemapSettings.from_env(env)
    assert "SECabc" not in str(raised.value)


def test_the_robots_and_the_gateway_are_read():
    from core.settings import OnemapSettings

    config = OnemapSettings.from_env({"ONEMAP_DINGTALK_ROBOTS": ROBOT, "ONEMAP_SMS_URL": "https://sms.local/send",
                                      "ONEMAP_OUTBOX_BACKOFF_S": "0.5"}).notifications
    assert config.dingtalk_robot("ops").secret == "SECabc" and config.dingtalk_robot("nobody") is None
    assert "SECabc" not in repr(config) and "access_token" not in repr(config)
    assert (config.sms_url, config.backoff_s, config.max_attempts) == ("https://sms.local/send", 0.5, 8)


# -- channels -----------------------------------------------------------------------------------------


def test_the_signature_is_dingtalks_and_the_check_can_fail():
    from core.settings import DingTalkRobot
    from gis.notifications.channels import dingtalk_url

    robot = DingTalkRobot("ops", "https://oapi.dingtalk.com/robot/send?access_token=abc", SECRETS["flaky"])
    now_ms = round(time.time() * 1000)
    query = urlsplit(dingtalk_url(robot, timestamp_ms=now_ms)).query
    assert query.startswith("access_token=abc&timestamp=")
    assert check_signature(query, SECRETS["flaky"]) is None
    assert check_signature(query, SECRETS["ops"]) is not None  # another secret
    old = urlsplit(dingtalk_url(robot, timestamp_ms=now_ms - 3601 * 1000)).query
    assert "an hour" in check_signature(old, SECRETS["flaky"])
    sign = parse_qs(query)["sign"][0]
    assert "+" in sign or "/" in sign or "=" in sign  # so encoding once or twice makes a difference
    twice = query.split("&sign=")[0] + "&sign=" + quote_plus(quote_plus(sign))
    assert check_signature(twice, SECRETS["flaky"]) is not None


def test_a_dingtalk_message_is_signed_carries_its_key_and_is_delivered_once(worker, receiver):
    key = _key("ding")
    _notify(key, "dingtalk", "ops", title="网格 A-03 独居老人门磁 24 小时未开", text="请上门查看")
    wait_for(lambda: _all_delivered([key]), 20, "the DingTalk message")
    [hit] = [hit for hit in receiver.for_target("ops") if hit.key == key]
    assert receiver.honoured[key] == 1 and not receiver.bad
    assert hit.covered == (key,)


def test_an_sms_follows_the_gateway_template(worker, receiver):
    key = _key("sms")
    _notify(key, "sms", "+8613800000003", title="案件已派遣", text="请于 30 分钟内到达")
    wait_for(lambda: _all_delivered([key]), 20, "the SMS")
    [hit] = [hit for hit in receiver.for_target("+8613800000003")]
    assert hit.key == key and receiver.honoured[key] == 1 and not receiver.bad
    assert hit.body == {"phone": "+8613800000003", "message": "案件已派遣：请于 30 分钟内到达", "request_id": key}


def test_an_in_app_notification_reaches_the_live_feed(worker, live_server, accounts):
    from test_live import Stream

    stream = Stream(live_server, accounts["commander"].auth)
    try:
        assert stream.next()["event"] == "hello"
        key = _key("in-app")
        _notify(key, "in_app", accounts["worker"].username, title="新案件", text="A-03 网格")
        message = stream.until(lambda m: m["event"] == "notification" and m["data"]["key"] == key)
    finally:
        stream.close()
    assert message["data"]["recipient"] == accounts["worker"].username
    assert message["data"]["subject"] == {"kind": "case", "id": 42}
    assert (message["data"]["title"], message["data"]["text"]) == ("新案件", "A-03 网格")
    assert _states([key]) == {key: "delivered"}


# -- crashes, retries, dead letters, storms ------------------------------------------------------------


def test_kill_9_mid_delivery_loses_nothing_and_sends_nothing_twice(worker, receiver):
    """Two workers deliver to slow receivers; one is killed with SIGKILL mid-request and started again.

    Every notification is delivered. A request the receiver got before the kill, for a
    notification not yet marked delivered, may come again with the same key (at least once
    to the gateway; the receiver honours the key). No other key comes twice, and no key is
    ever sent by two senders at once, though each worker's sweep runs more often than a
    request takes.
    """
    from django.db import transaction

    from gis.models import Notification

    receiver.slow_s.update({"crash": 1.5, "13900000000": 1.5})  # longer than a sweep, shorter than the lease
    other = WorkerProcess(receiver, "--concurrency", "4").start()
    keys = [_key(f"crash-ding-{n}") for n in range(12)] + [_key(f"crash-sms-{n}") for n in range(12)]
    try:
        with transaction.atomic():
            for key in keys:
                _notify(key, "dingtalk", "crash") if "ding" in key else _notify(key, "sms", "13900000000")
        wait_for(lambda: len([h for h in receiver.in_flight() if h.key in keys]) >= 4, 20, "requests in flight")
        worker.kill9()
        time.sleep(0.3)  # bytes already on their way arrive
        seen_before = set(receiver.keys_hit()) & set(keys)
        in_flight = {hit.key for hit in receiver.in_flight() if hit.key in keys}
        undelivered = {key for key, state in _states(keys).items() if state != "delivered"}
        assert in_flight and in_flight <= undelivered
        worker.start()
        wait_for(lambda: _all_delivered(keys), 45, "every notification delivered after the restart")
    finally:
        other.stop()
        receiver.slow_s.clear()

    hits = receiver.keys_hit()
    repeated = {key for key in keys if hits[key] > 1}
    assert repeated <= seen_before & undelivered, "a key was sent again that was not in doubt when the worker died"
    assert all(receiver.honoured[key] == 1 for key in keys)
    assert not set(receiver.overlapping()) & set(keys), "two senders held one notification at once"
    assert not receiver.bad
    attempts = dict(Notification.objects.filter(key__in=keys).values_list("key", "attempts"))
    assert all(attempts[key] == 1 for key in keys if key not in repeated)


def test_a_dead_channel_retries_with_backoff_then_dead_letters_then_replays(worker, receiver):
    from gis.models import Notification
    from gis.notifications.selectors import dead_notifications
    from gis.notifications.services import notification_replay

    receiver.failing.add("flaky")
    key = _key("flaky")
    _notify(key, "dingtalk", "flaky", title="离线的机器人")
    wait_for(lambda: _states([key]) == {key: "dead"}, 30, "the notification to be dead-lettered")
    hits = [hit for hit in receiver.for_target("flaky") if hit.key == key]
    assert len(hits) == 3  # ONEMAP_OUTBOX_MAX_ATTEMPTS
    notification_id = Notification.objects.get(key=key).id
    delays = [float(d) for d in re.findall(rf"notification {notification_id} attempt \d by dingtalk failed; "
                                             r"retry in ([\d.]+) s", worker.log())]
    assert len(delays) == 2 and 0.4 <= delays[0] <= 0.5 and 0.8 <= delays[1] <= 1.0, delays  # 0.4 s, doubled, jitter
    gaps = [later.received - earlier.answered for earlier, later in itertools.pairwise(hits)]
    assert gaps[0] >= delays[0] - 0.05 and gaps[1] >= delays[1] - 0.05, (gaps, delays)  # and kept
    stamps = [hit.timestamp_ms for hit in hits]
    assert stamps == sorted(set(stamps)), "each attempt is signed anew"
    assert not receiver.bad
    [dead] = [row for row in dead_notifications() if row["key"] == key]
    assert dead["attempts"] == 3 and "HTTP 500" in dead["last_error"] and dead["title"] == "离线的机器人"

    receiver.failing.discard("flaky")
    replayed = notification_replay(notification_id=dead["id"])
    assert replayed.state == "pending" and replayed.attempts == 0
    wait_for(lambda: _all_delivered([key]), 20, "the replayed notification")
    assert receiver.honoured[key] == 1 and receiver.keys_hit()[key] == 4
    assert key not in {row["key"] for row in dead_notifications()}
    notification = Notification.objects.get(key=key)
    assert [a.outcome for a in notification.attempt_log.order_by("id")][-1] == "ok"
    assert notification.attempt_log.count() == 4


def test_replay_refuses_what_is_not_dead(migrated_db):
    from gis.models import Notification
    from gis.notifications.services import notification_replay
    from gis.services import ServiceError

    key = _key("not-dead")
    _notify(key, "in_app", "test_commander")
    with pytest.raises(ServiceError, match="not dead"):
        notification_replay(notification_id=Notification.objects.get(key=key).id)
    with pytest.raises(ServiceError, match="no notification"):
        notification_replay(notification_id=10**12)


def test_a_storm_to_one_robot_is_twenty_requests_the_rest_in_one_summary(worker, receiver):
    """30 messages for one robot in a minute: 19 alone, the 20th request one summary of the other 11."""
    from django.db import transaction

    from gis.models import Notification

    keys = [_key(f"storm-{n}") for n in range(30)]
    with transaction.atomic():
        for n, key in enumerate(keys):
            _notify(key, "dingtalk", "storm", title=f"告警 {n}")

    def settled() -> bool:
        rows = Notification.objects.filter(key__in=keys)
        return rows.count() == 30 and all(
            row.state == "delivered" or (row.state == "coalesced" and row.summary.state == "delivered") for row in rows)

    wait_for(settled, 30, "the storm to be delivered")
    hits = receiver.for_target("storm")
    assert len(hits) == 20
    summaries = [hit for hit in hits if len(hit.covered) > 1]
    assert len(summaries) == 1 and len(summaries[0].covered) == 11
    covered = Counter(key for hit in hits for key in hit.covered)
    assert set(covered) == set(keys) and set(covered.values()) == {1}
    assert all(receiver.honoured[key] == 1 for key in keys) and not receiver.bad
    coalesced = Notification.objects.filter(key__in=keys, state="coalesced")
    assert coalesced.count() == 11 and len({row.summary_id for row in coalesced}) == 1
    assert all(row.delivered_at is not None for row in coalesced)


def test_jobs_of_a_worker_that_vanished_are_marked_failed(migrated_db):
    """The housekeeping job: a job left ``doing`` by a dead worker (procrastinate pruned it) ends as failed."""
    import asyncio
    from types import SimpleNamespace

    from django.db import connection
    from procrastinate.contrib.django import app

    from gis.tasks import jobs_tidy

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO procrastinate_jobs (queue_name, task_name, status, args, worker_id)"
                       " VALUES ('notifications', 'notifications.deliver', 'doing', '{}', NULL) RETURNING id")
        job_id = cursor.fetchone()[0]
    assert asyncio.run(jobs_tidy(SimpleNamespace(app=app), timestamp=0)) >= 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", [job_id])
        assert cursor.fetchone() == ("failed",)


# -- the worker beside the server ---------------------------------------------------------------------


def test_a_worker_started_beside_the_server_ends_when_the_server_is_killed(receiver, migrated_db):
    script = ("import sys, time; sys.path.insert(0, '.'); from host.cli.worker import start_beside_server; "
              "print(start_beside_server().pid, flush=True); time.sleep(120)")
    env = dict(WorkerProcess(receiver).env)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    child = int(parent.stdout.readline())
    time.sleep(3)
    assert _running(child), "the worker did not start"
    os.kill(parent.pid, signal.SIGKILL)  # the server's main process, killed outright (not its group)
    parent.wait(timeout=10)
    wait_for(lambda: not _running(child), 20, "the orphaned worker to stop")


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
