"""``onemap open311-key``: the api keys apps post Open311 service requests with (``docs/open311.md``)."""

from __future__ import annotations

from core.cli import CommandError, setup_django


def register(sub) -> None:
    """Add this group's commands to the ``onemap`` parser."""
    key = sub.add_parser("open311-key", help="Open311 api keys (for apps that post residents' reports)")
    key_sub = key.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    add = key_sub.add_parser("add", help="issue a key to an app and print it once")
    add.add_argument("name", help="who holds it, e.g. zz12345-app (goes on every report it sends)")
    key_sub.add_parser("list", help="list the keys (never the keys themselves)")
    revoke = key_sub.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("name")
    key.set_defaults(func=cmd_open311_key)


def cmd_open311_key(args) -> int:
    setup_django()
    from gis.open311 import services as open311
    from gis.reports.services import LIMITS_PER_HOUR
    from gis.services import ServiceError

    try:
        if args.action == "add":
            row, secret = open311.key_add(name=args.name)
            print(f"Open311 api key for {row.name}:")
            print()
            print(f"  {secret}")
            print()
            print("It is shown only this once; keep it secret (`onemap open311-key revoke NAME` ends it).")
            print(f"The app sends it as api_key with POST /open311/v2/requests.xml (or .json); at most "
                  f"{LIMITS_PER_HOUR['api_key']} reports an hour per key.")
        elif args.action == "list":
            keys = open311.key_list()
            print(f"{'name':<30} {'key':<12} {'created':<16} state")
            for k in keys:
                state = f"revoked {_when(k.revoked_at)}" if k.revoked_at else "active"
                print(f"{k.name:<30} {k.hint + '…':<12} {_when(k.created_at):<16} {state}")
            print(f"{len(keys)} key(s)")
        else:
            already = open311.key_list()
            was_revoked = any(k.name == args.name and k.revoked_at for k in already)
            open311.key_revoke(name=args.name)
            print(f"key {args.name} was already revoked" if was_revoked else f"key {args.name} revoked")
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    return 0


def _when(moment) -> str:
    from django.utils import timezone

    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "-"
