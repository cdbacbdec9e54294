"""``onemap user``, ``token``: who may see what, and their personal access tokens.
"""

from __future__ import annotations

from core.cli import CommandError, setup_django
from core.roles import ROLES


def register(sub) -> None:
    """Add this group's commands to the ``onemap`` parser."""
    user = sub.add_parser("user", help="users and their roles (who may see what)")
    user_sub = user.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    user_add = user_sub.add_parser("add", help="add a user with a role (no password: they sign in with tokens)")
    user_add.add_argument("username")
    user_add.add_argument(
        "--role", required=True, metavar="ROLE", help=" | ".join(ROLES)
    )
    user_add.add_argument("--grid", help="grid workers only: code of their level-3 grid")
    user_add.add_argument("--department", default="", help="the user's department, e.g. civil affairs")
    user_bind = user_sub.add_parser("bind", help="bind a grid worker's user to their worker (GW-…): the phone's tasks")
    user_bind.add_argument("username")
    user_bind.add_argument("worker", metavar="WORKER_CODE", help="e.g. GW-001, a worker of the user's grid")
    user_sub.add_parser("list", help="list the users, their roles and grids")
    for action, what in (("disable", "refuse all of a user's tokens"), ("enable", "accept a user's tokens again")):
        toggle = user_sub.add_parser(action, help=what)
        toggle.add_argument("username")
    user.set_defaults(func=cmd_user)

    token = sub.add_parser("token", help="personal access tokens (for QGIS, GDAL, scripts)")
    token_sub = token.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    token_new = token_sub.add_parser("create", help="create a token for a user and print it once")
    token_new.add_argument("username")
    token_new.add_argument("--name", default="personal", help="what the token is for, e.g. qgis-laptop")
    token_new.add_argument("--expires-days", type=int, default=None, help="days until it expires (default never)")
    token_ls = token_sub.add_parser("list", help="list tokens (never their secrets)")
    token_ls.add_argument("username", nargs="?", default=None, help="only this user's tokens")
    token_rm = token_sub.add_parser("revoke", help="revoke a token by id (see token list)")
    token_rm.add_argument("id", type=int)
    token.set_defaults(func=cmd_token)


def cmd_user(args) -> int:
    setup_django()
    from api.auth import CACHE_TTL
    from gis.accounts import services as accounts
    from gis.services import ServiceError

    try:
        if args.action == "add":
            user = accounts.user_create(
                username=args.username, role=args.role, grid_code=args.grid, department=args.department
            )
            grid = f" bound to grid {args.grid}" if args.grid else ""
            print(f"user {user.username} added as {args.role}{grid}")
            print(f"  give them a token: onemap token create {user.username} --name qgis")
        elif args.action == "bind":
            worker = accounts.grid_worker_bind(username=args.username, worker_code=args.worker)
            print(f"user {args.username} is grid worker {worker.code} {worker.name} ({worker.grid.code}); "
                  "their phone shows the cases dispatched to this worker")
        elif args.action == "list":
            profiles = accounts.user_list()
            print(f"{'username':<20} {'role':<14} {'grid':<24} {'active':<7} department")
            for p in profiles:
                grid = p.grid.code if p.grid else "-"
                active = "yes" if p.user.is_active else "no"
                print(f"{p.user.username:<20} {p.role:<14} {grid:<24} {active:<7} {p.department or '-'}")
            print(f"{len(profiles)} user(s)")
        else:
            user = accounts.user_set_active(username=args.username, active=args.action == "enable")
            within = f"running servers refuse its tokens within {CACHE_TTL:.0f} s"
            state = "enabled" if user.is_active else f"disabled ({within})"
            print(f"user {user.username} {state}")
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    return 0


def cmd_token(args) -> int:
    setup_django()
    from datetime import timedelta

    from django.utils import timezone

    from api.auth import CACHE_TTL
    from core.settings import settings as current_settings
    from gis.accounts import services as accounts
    from gis.services import ServiceError

    try:
        if args.action == "create":
            expires_at = None
            if args.expires_days is not None:
                if args.expires_days < 1:
                    raise CommandError(f"--expires-days must be 1 or more, got {args.expires_days}")
                expires_at = timezone.now() + timedelta(days=args.expires_days)
            row, secret = accounts.token_create(username=args.username, name=args.name, expires_at=expires_at)
            settings = current_settings()
            base = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
            ogc_url = base.rstrip("/") + "/ogc"
            until = f"expires {timezone.localtime(expires_at):%Y-%m-%d %H:%M}" if expires_at else "does not expire"
            print(f"token {row.id} for {args.username} ({row.name}, {until}):")
            print()
            print(f"  {secret}")
            print()
            print("It is shown only this once; keep it like a password (`onemap token revoke ID` ends it).")
            print(f"QGIS: new OGC API - Features connection to {ogc_url}, Authentication ▸ Basic:")
            print(f"  username {args.username}, password the token above.")
            print('curl/GDAL: send the header "Authorization: Bearer <token>".')
        elif args.action == "bind":
            worker = accounts.grid_worker_bind(username=args.username, worker_code=args.worker)
            print(f"user {args.username} is grid worker {worker.code} {worker.name} ({worker.grid.code}); "
                  "their phone shows the cases dispatched to this worker")
        elif args.action == "list":
            tokens = accounts.token_list(username=args.username)
            now = timezone.now()
            print(f"{'id':>5} {'username':<20} {'name':<20} {'token':<10} {'created':<16} {'last used':<16} state")
            for t in tokens:
                print(
                    f"{t.id:>5} {t.user.username:<20} {t.name[:20]:<20} {t.hint + '…':<10} {_when(t.created_at):<16} "
                    f"{_when(t.last_used_at):<16} {_token_state(t, now)}"
                )
            print(f"{len(tokens)} token(s)")
        else:
            from gis.models import AccessToken

            already = AccessToken.objects.filter(pk=args.id, revoked_at__isnull=False).exists()
            accounts.token_revoke(token_id=args.id)
            if already:
                print(f"token {args.id} was already revoked")
            else:
                print(f"token {args.id} revoked (running servers refuse it within {CACHE_TTL:.0f} s)")
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    return 0


def _when(moment) -> str:
    from django.utils import timezone

    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "-"


def _token_state(token, now) -> str:
    if token.revoked_at:
        return f"revoked {_when(token.revoked_at)}"
    if token.expires_at and token.expires_at <= now:
        return f"expired {_when(token.expires_at)}"
    if not token.user.is_active:
        return "user disabled"
    return f"active until {_when(token.expires_at)}" if token.expires_at else "active"
