"""Recipients named by reference: the outbox keeps ``report:12``, never the resident's phone number.

A domain whose people are private (a resident who reported) registers a resolver for its
prefix; the SMS channel asks for the number only at the moment it sends, and the number
never enters the outbox, its attempts or a log line.
"""

from __future__ import annotations

from collections.abc import Callable

_RESOLVERS: dict[str, Callable[[str], str | None]] = {}


class Unresolvable(LookupError):
    """A reference that names nobody (any more): the notification cannot be sent."""


def register(prefix: str, resolver: Callable[[str], str | None]) -> None:
    """``resolver(rest)`` gives the phone number of ``prefix:rest``, or None when there is none."""
    _RESOLVERS[prefix] = resolver


def is_reference(recipient: str) -> bool:
    return recipient.partition(":")[0] in _RESOLVERS


def resolve(recipient: str) -> str:
    """The address to send to: a reference resolved now, anything else as it is."""
    prefix, _, rest = recipient.partition(":")
    resolver = _RESOLVERS.get(prefix)
    if resolver is None:
        return recipient
    found = resolver(rest)
    if not found:
        raise Unresolvable(f"{prefix} {rest} has no phone number (any more)")
    return found
