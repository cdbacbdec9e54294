"""The channels that leave the database: a DingTalk group's custom robot and an SMS gateway over HTTP.

Each takes one :class:`Message` and makes one request, or raises :class:`ChannelError`.
Every request carries the notification's idempotency key (header ``Idempotency-Key``, and
in the text or body), so a receiver that honours it can drop a repeat. The in-app
channel is no request: it is a row of the live feed (:mod:`gis.notifications.delivery`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from urllib.parse import quote_plus

from core.settings import DingTalkRobot, NotificationSettings
from gis.notifications import recipients
from gis.notifications.models import DINGTALK, SMS

# DingTalk accepts at most this many messages a minute from one robot (then answers 130101 and mutes it)
DINGTALK_PER_MINUTE = 20
DINGTALK_RATE_LIMITED = 130101
SMS_MESSAGE_CHARS = 300  # longer texts are cut (several SMS parts at most)
KEY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Member:
    """One notification carried by a summary."""

    key: str
    title: str


@dataclass(frozen=True)
class Message:
    """What one request sends: one notification, or a summary of several (``members``)."""

    key: str
    channel: str
    recipient: str
    title: str
    text: str = ""
    members: tuple[Member, ...] = ()


class ChannelError(Exception):
    """The request failed; ``permanent`` when trying again cannot help (say, a robot nobody configured)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def send(message: Message, config: NotificationSettings) -> None:
    """Make the one request ``message`` needs on its channel; ChannelError when it was not accepted."""
    if message.channel == DINGTALK:
        robot = config.dingtalk_robot(message.recipient)
        if robot is None:
            raise ChannelError(f"no DingTalk robot named {message.recipient!r} in ONEMAP_DINGTALK_ROBOTS", permanent=True)
        return dingtalk_send(robot, message, timeout_s=config.timeout_s)
    if message.channel == SMS:
        if not config.sms_url:
            raise ChannelError("no SMS gateway: set ONEMAP_SMS_URL", permanent=True)
        try:
            phone = recipients.resolve(message.recipient)
        except recipients.Unresolvable as exc:
            raise ChannelError(str(exc), permanent=True) from None
        return sms_send(config.sms_url, config.sms_template, replace(message, recipient=phone),
                        timeout_s=config.timeout_s)
    raise ChannelError(f"{message.channel!r} is not a channel that sends requests", permanent=True)


# -- DingTalk -------------------------------------------------------------------------------------


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` parameter: HMAC-SHA256 of ``"{timestamp}\\n{secret}"`` keyed by the secret, base64, URL-encoded once."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def dingtalk_url(robot: DingTalkRobot, *, timestamp_ms: int | None = None) -> str:
    """The robot's webhook with a fresh ``timestamp`` and ``sign`` (made anew for every attempt: DingTalk
    refuses a timestamp more than an hour old)."""
    timestamp_ms = round(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    joiner = "&" if "?" in robot.webhook else "?"
    return f"{robot.webhook}{joiner}timestamp={timestamp_ms}&sign={dingtalk_sign(robot.secret, timestamp_ms)}"


def dingtalk_text(message: Message) -> str:
    """The text DingTalk shows: title, text, and the key (or each member's) so a repeat can be recognised."""
    lines = [message.title]
    if message.text:
        lines.append(message.text)
    lines.extend(f"• {member.title}〔{member.key}〕" for member in message.members)
    lines.append(f"〔{message.key}〕")
    return "\n".join(lines)


def dingtalk_send(robot: DingTalkRobot, message: Message, *, timeout_s: float) -> None:
    body = {"msgtype": "text", "text": {"content": dingtalk_text(message)}}
    status, answer = _post_json(dingtalk_url(robot), body, key=message.key, timeout_s=timeout_s,
                                secrets=(robot.webhook, robot.secret))
    try:
        reply = json.loads(answer or b"{}")
        errcode = int(reply.get("errcode", -1))
    except (ValueError, TypeError, AttributeError):
        raise ChannelError(f"DingTalk answered HTTP {status} with no JSON result") from None
    if errcode != 0:
        hint = " (over 20 messages a minute)" if errcode == DINGTALK_RATE_LIMITED else ""
        raise ChannelError(f"DingTalk refused the message: errcode {errcode}{hint}: {str(reply.get('errmsg', ''))[:200]}")


# -- SMS ----------------------------------------------------------------------------------------


def sms_body(template: str, message: Message) -> dict:
    """The gateway's JSON body: ``ONEMAP_SMS_TEMPLATE`` with ``{phone}``, ``{message}`` and ``{key}`` filled in."""
    text = message.title if not message.text else f"{message.title}：{message.text}"
    if len(text) > SMS_MESSAGE_CHARS:
        text = text[: SMS_MESSAGE_CHARS - 1] + "…"
    return _fill(json.loads(template), {"phone": message.recipient, "message": text, "key": message.key})


def sms_send(url: str, template: str, message: Message, *, timeout_s: float) -> None:
    # the number is kept out of any error text (a resident's number must never reach a log line)
    _post_json(url, sms_body(template, message), key=message.key, timeout_s=timeout_s,
               secrets=(url, message.recipient))


def _fill(value, fields: dict):
    if isinstance(value, str):
        return value.format_map(fields)  # the placeholders were checked when the settings were read
    if isinstance(value, dict):
        return {name: _fill(item, fields) for name, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, fields) for item in value]
    return value


# -- HTTP ---------------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A gateway that redirects a POST is misconfigured; following it would resend the body elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)
# answers that will never be accepted as they are (a redirect, wrong body, unknown phone, bad credentials)
_PERMANENT = set(range(300, 500)) - {408, 409, 425, 429}


def _post_json(url: str, body: dict, *, key: str, timeout_s: float, secrets: tuple[str, ...]) -> tuple[int, bytes]:
    """POST ``body`` with the idempotency key; (status, answer) for a 2xx, else ChannelError (no secret in its text)."""
    request = urllib.request.Request(
        url, data=json.dumps(body, ensure_ascii=False).encode(), method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", KEY_HEADER: key, "User-Agent": "onemap-outbox"},
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return response.status, response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        raise ChannelError(_redacted(f"HTTP {exc.code} {exc.reason}", secrets), permanent=exc.code in _PERMANENT) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, unreachable, timed out, bad answer
        reason = getattr(exc, "reason", None) or exc
        raise ChannelError(_redacted(f"no answer: {reason}", secrets)) from None


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "…")
    return text[:500]
