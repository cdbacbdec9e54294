"""Identity layer: tokens through identity_for_request, roles and grids, rate limits, access log, CLI, headers."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import auth
from host.cli import main
from gis import models as m
from gis.accounts import services as accounts
from gis.services import ServiceError

factory = RequestFactory()


@pytest.fixture(autouse=True)
def fresh_cache():
    auth.clear_identity_cache()
    yield
    auth.clear_identity_cache()


@pytest.fixture(scope="module", autouse=True)
def forget_failures_afterwards():
    """Failed logins made here must not rate-limit the live-server tests that follow."""
    yield
    m.LoginFailure.objects.all().delete()


@pytest.fixture
def level3(demo_db) -> m.Grid:
    return m.Grid.objects.filter(level=3).order_by("code").first()


@pytest.fixture
def analyst(rollback):
    user = accounts.user_create(username="li.analyst", role="analyst")
    row, secret = accounts.token_create(username=user.username, name="qgis-laptop")
    return user, row, secret


def basic(username: str, password: str, addr: str = "192.0.2.1"):
    value = base64.b64encode(f"{username}:{password}".encode()).decode()
    return factory.get("/ogc/collections", HTTP_AUTHORIZATION=f"Basic {value}", REMOTE_ADDR=addr)


def bearer(token: str, addr: str = "192.0.2.1"):
    return factory.get("/ogc/collections", HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=addr)


def refusal(request) -> auth.AuthError:
    with pytest.raises(auth.AuthError) as caught:
        auth.identity_for_request(request)
    return caught.value


# -- tokens through identity_for_request ------------------------------------------


def test_no_authorization_header_is_anonymous_and_costs_no_query(demo_db):
    with CaptureQueriesContext(connection) as queries:
        identity = auth.identity_for_request(factory.get("/ogc/collections"))
    assert identity is auth.ANONYMOUS and identity.is_anonymous
    assert len(queries) == 0


def test_token_round_trip_basic_and_bearer(analyst):
    user, row, secret = analyst
    for request in (basic(user.username, secret), bearer(secret)):
        auth.clear_identity_cache()
        identity = auth.identity_for_request(request)
        assert identity == auth.Identity(role="analyst", username=user.username, user_id=user.pk, token_id=row.id)
        assert not identity.is_anonymous


def test_a_grid_worker_identity_carries_their_level3_grid(rollback, level3):
    accounts.user_create(username="zhang.worker", role="grid_worker", grid_code=level3.code)
    _, secret = accounts.token_create(username="zhang.worker", name="phone")
    identity = auth.identity_for_request(bearer(secret))
    assert (identity.role, identity.grid_id) == ("grid_worker", level3.id)


def test_only_the_digest_of_a_token_is_stored(analyst):
    _, row, secret = analyst
    assert secret.startswith("om_") and len(secret) >= 3 + 43  # 32 random bytes, base64url
    row.refresh_from_db()
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM access_tokens t WHERE strpos(t::text, %s) > 0", [secret[3:]])
        assert cursor.fetchone()[0] == 0


def test_two_tokens_differ(analyst):
    _, _, first = analyst
    _, second = accounts.token_create(username="li.analyst", name="notebook")
    assert first != second


def _revoke(row, secret):
    accounts.token_revoke(token_id=row.id)


def _expire(row, secret):
    m.AccessToken.objects.filter(pk=row.id).update(expires_at=timezone.now() - timedelta(seconds=1))


def _disable(row, secret):
    accounts.user_set_active(username="li.analyst", active=False)


@pytest.mark.parametrize(
    "spoil, make_request, says",
    [
        (None, lambda secret: bearer("om_" + "x" * 43), "not known"),
        (None, lambda secret: basic("li.analyst", secret[:-1] + ("A" if secret[-1] != "A" else "B")), "not known"),
        (None, lambda secret: basic("someone.else", secret), "username does not match"),
        (None, lambda secret: basic("li.analyst", "the account password"), "not the account password"),
        (None, lambda secret: factory.get("/", HTTP_AUTHORIZATION="Basic !!notbase64"), "base64"),
        (None, lambda secret: factory.get("/", HTTP_AUTHORIZATION=f"Token {secret}"), "Unsupported authorization"),
        (_revoke, lambda secret: bearer(secret), "revoked"),
        (_expire, lambda secret: basic("li.analyst", secret), "expired"),
        (_disable, lambda secret: basic("li.analyst", secret), "disabled"),
    ],
)
def test_bad_credentials_are_refused_with_401_and_a_challenge(analyst, spoil, make_request, says):
    _, row, secret = analyst
    if spoil is not None:
        spoil(row, secret)
    request = make_request(secret)
    error = refusal(request)
    assert error.status == 401
    assert says in str(error)
    scheme = "Bearer" if request.META["HTTP_AUTHORIZATION"].startswith("Bearer") else "Basic"
    assert error.headers["WWW-Authenticate"].startswith(f'{scheme} realm="Community One Map"')


def test_a_cached_token_costs_no_query(analyst):
    user, row, secret = analyst
    auth.identity_for_request(basic(user.username, secret))
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert auth.identity_for_request(basic(user.username, secret)).token_id == row.id
            assert auth.identity_for_request(bearer(secret)).token_id == row.id
    assert len(queries) == 0
    # a remembered token with someone else's username goes to the database, and is refused there
    assert "username does not match" in str(refusal(basic("someone.else", secret)))


def test_last_used_at_is_written_on_first_use_not_on_every_request(analyst):
    user, row, secret = analyst
    assert row.last_used_at is None
    auth.identity_for_request(bearer(secret))
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    auth.clear_identity_cache()  # even from the database path: used within the minute, not written again
    with CaptureQueriesContext(connection) as queries:
        auth.identity_for_request(bearer(secret))
    assert not any("UPDATE" in q["sql"] for q in queries.captured_queries)


def test_a_revocation_elsewhere_takes_effect_when_the_cache_entry_ends(analyst):
    _, row, secret = analyst
    auth.identity_for_request(bearer(secret))
    # another process revokes: this one trusts its cache until the entry's TTL ends
    m.AccessToken.objects.filter(pk=row.id).update(revoked_at=timezone.now())
    assert auth.identity_for_request(bearer(secret)).token_id == row.id
    auth._CACHE[hashlib.sha256(secret.encode()).hexdigest()].valid_until = 0  # the TTL has passed
    assert refusal(bearer(secret)).status == 401


def test_a_revocation_in_this_process_takes_effect_at_once(analyst):
    _, row, secret = analyst
    auth.identity_for_request(bearer(secret))
    accounts.token_revoke(token_id=row.id)
    assert "revoked" in str(refusal(bearer(secret)))


def test_a_token_is_not_cached_beyond_its_expiry(analyst):
    _, row, secret = analyst
    soon = timezone.now() + timedelta(seconds=5)
    m.AccessToken.objects.filter(pk=row.id).update(expires_at=soon)
    auth.identity_for_request(bearer(secret))
    entry = auth._CACHE[hashlib.sha256(secret.encode()).hexdigest()]
    assert entry.valid_until <= soon.timestamp()


def test_the_cache_stays_bounded(analyst, monkeypatch):
    _, _, secret = analyst
    monkeypatch.setattr(auth, "CACHE_SIZE", 3)
    for i in range(5):
        auth._remember(f"{i:064x}", auth.ANONYMOUS, expires_at=None, touched_at=0.0)
    auth.identity_for_request(bearer(secret))
    assert len(auth._CACHE) == 3
    assert hashlib.sha256(secret.encode()).hexdigest() in auth._CACHE


# -- rate limiting ------------------------------------------------------------------


def _fail(times: int, *, username: str = "li.analyst", addrs=("192.0.2.1",)) -> None:
    for i in range(times):
        addr = addrs[i % len(addrs)]
        assert refusal(basic(username, "om_wrong" + "x" * 40, addr=addr)).status == 401


def test_too_many_failures_from_one_address_give_429_even_for_a_correct_token(analyst):
    user, _, secret = analyst
    _fail(auth.FAILURE_LIMIT, username="nobody", addrs=("192.0.2.1",))
    error = refusal(bearer(secret, addr="192.0.2.1"))
    assert error.status == 429 and "try again" in str(error)
    assert 1 <= int(error.headers["Retry-After"]) <= auth.FAILURE_WINDOW
    # another address is not blocked, and the token is good
    assert auth.identity_for_request(bearer(secret, addr="192.0.2.2")).username == user.username


def test_too_many_failures_for_one_username_give_429_from_any_address(analyst):
    user, _, secret = analyst
    addrs = tuple(f"198.51.100.{i}" for i in range(1, auth.FAILURE_LIMIT + 1))
    _fail(auth.FAILURE_LIMIT, username="LI.Analyst", addrs=addrs)  # usernames are counted case-blind
    assert refusal(basic(user.username, secret, addr="203.0.113.9")).status == 429
    # the same fresh address with another user's token is not blocked
    accounts.user_create(username="wang.commander", role="commander")
    _, other = accounts.token_create(username="wang.commander", name="screen")
    assert auth.identity_for_request(basic("wang.commander", other, addr="203.0.113.9")).role == "commander"


def test_refusals_with_429_are_not_counted_as_failures(analyst):
    _, _, secret = analyst
    _fail(auth.FAILURE_LIMIT, addrs=("192.0.2.6",))
    for _ in range(3):
        assert refusal(bearer(secret, addr="192.0.2.6")).status == 429
    assert m.LoginFailure.objects.filter(remote_addr="192.0.2.6").count() == auth.FAILURE_LIMIT


def test_one_failure_below_the_limit_is_still_allowed(analyst):
    user, _, secret = analyst
    _fail(auth.FAILURE_LIMIT - 1, addrs=("192.0.2.7",))
    assert auth.identity_for_request(basic(user.username, secret, addr="192.0.2.7")).role == "analyst"


def test_failures_are_stored_in_the_database(analyst):
    _fail(2, addrs=("192.0.2.8",))
    rows = m.LoginFailure.objects.filter(remote_addr="192.0.2.8")
    assert rows.count() == 2 and {r.username for r in rows} == {"li.analyst"}


def test_a_blocked_caller_with_a_cached_token_is_not_asked_about_failures(analyst):
    user, _, secret = analyst
    auth.identity_for_request(bearer(secret, addr="192.0.2.9"))
    _fail(auth.FAILURE_LIMIT, addrs=("192.0.2.9",))
    with CaptureQueriesContext(connection) as queries:
        assert auth.identity_for_request(bearer(secret, addr="192.0.2.9")).username == user.username
    assert len(queries) == 0


# -- users, roles and grids ---------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"role": "chief"}, "role must be one of administrator, commander, analyst, grid_worker, department"),
        ({"role": "grid_worker"}, "must be bound to a level-3 grid"),
        ({"role": "grid_worker", "grid_code": "999999999"}, "no grid with code"),
        ({"role": "grid_worker", "grid_code": "LEVEL2"}, "a grid worker must be bound to a level-3 grid, e.g."),
        ({"role": "analyst", "grid_code": "LEVEL3"}, "only grid workers are bound to a grid"),
        ({"role": "analyst", "username": "has space"}, "may contain only letters"),
    ],
)
def test_user_create_refuses_with_a_clear_message(rollback, level3, kwargs, says):
    kwargs = dict({"username": "new.user"}, **kwargs)
    codes = {"LEVEL2": level3.parent.code, "LEVEL3": level3.code}
    kwargs["grid_code"] = codes.get(kwargs.get("grid_code"), kwargs.get("grid_code"))
    with pytest.raises(ServiceError, match=says.replace(".", r"\.").replace("(", r"\(")):
        accounts.user_create(**kwargs)
    assert not m.AccessProfile.objects.filter(user__username="new.user").exists()


def test_user_create_refuses_a_duplicate(analyst):
    with pytest.raises(ServiceError, match="already exists"):
        accounts.user_create(username="li.analyst", role="commander")


def test_user_create_gives_a_role_to_an_existing_user_without_one(rollback):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create(username="old.account")
    user = accounts.user_create(username="old.account", role="commander")
    assert user.access_profile.role == "commander"


def test_users_get_no_usable_password(analyst):
    user, _, _ = analyst
    assert not user.has_usable_password()


def _insert_profile(role: str, grid) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(username=f"raw.{role}")
    with transaction.atomic():
        m.AccessProfile.objects.create(user=user, role=role, grid=grid)


@pytest.mark.parametrize(
    "role, which_grid, says",
    [
        ("grid_worker", "level2", "must be bound to a level-3 grid"),
        ("grid_worker", None, "access_profiles_grid_iff_grid_worker"),
        ("analyst", "level3", "access_profiles_grid_iff_grid_worker"),
        ("chief", None, "access_profiles_role_known"),
    ],
)
def test_the_database_refuses_a_bad_role_or_grid(rollback, level3, role, which_grid, says):
    grid = {"level2": level3.parent, "level3": level3, None: None}[which_grid]
    with pytest.raises(IntegrityError, match=says):
        _insert_profile(role, grid)


def test_the_database_keeps_a_workers_grid_at_level_3(rollback, level3):
    _insert_profile("grid_worker", level3)
    with pytest.raises(IntegrityError, match="must stay level 3"), transaction.atomic():
        with connection.cursor() as cursor:
            # a move the grid hierarchy itself allows: up one level, under its grandparent
            cursor.execute(
                "UPDATE grids SET level = 2, parent_id = %s WHERE id = %s", [level3.parent.parent_id, level3.id]
            )


# -- access log ---------------------------------------------------------------------


def test_access_log_write_appends_one_row_per_record(analyst):
    user, row, secret = analyst
    identity = auth.identity_for_request(bearer(secret))
    written = accounts.access_log_write(
        identity=identity, route="/ogc/collections/care_subjects/items", collection="care_subjects",
        record_ids=[17, "18"], remote_addr="192.0.2.5",
    )
    assert written == 2
    entries = list(m.AccessLogEntry.objects.filter(username=user.username).order_by("record_id"))
    assert [e.record_id for e in entries] == ["17", "18"]
    assert {(e.user_id, e.role, e.collection, e.remote_addr) for e in entries} == {
        (user.pk, "analyst", "care_subjects", "192.0.2.5")
    }
    assert all(e.at is not None for e in entries)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE access_log SET username = 'someone'", "DELETE FROM access_log", "TRUNCATE access_log"],
)
def test_access_log_is_append_only(analyst, statement):
    accounts.access_log_write(
        identity=auth.ANONYMOUS, route="/x", collection="care_subjects", record_ids=[1], remote_addr=None
    )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement)
    assert m.AccessLogEntry.objects.filter(route="/x").count() == 1


def test_access_log_takes_plain_sql_inserts(rollback):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO access_log (user_id, username, role, route, collection, record_id, remote_addr) "
            "SELECT NULL, NULL, 'commander', '/ogc', 'care_subjects', s::text, NULL FROM generate_series(1, 3) s"
        )
    assert m.AccessLogEntry.objects.filter(role="commander", route="/ogc").count() == 3


# -- the CLI ------------------------------------------------------------------------


def test_cli_user_and_token_lifecycle(rollback, level3, capsys):
    assert main(["user", "add", "zhao.worker", "--role", "grid_worker", "--grid", level3.code]) == 0
    assert f"bound to grid {level3.code}" in capsys.readouterr().out

    assert main(["token", "create", "zhao.worker", "--name", "qgis", "--expires-days", "30"]) == 0
    out = capsys.readouterr().out
    secret = next(word for word in out.split() if word.startswith("om_") and len(word) > 40)
    assert "Basic" in out and "username zhao.worker" in out
    identity = auth.identity_for_request(basic("zhao.worker", secret))
    assert identity.grid_id == level3.id

    assert main(["token", "list", "zhao.worker"]) == 0
    listing = capsys.readouterr().out
    assert secret not in listing and secret[:7] in listing and "active until" in listing

    assert main(["user", "list"]) == 0
    assert any(line.startswith("zhao.worker") and level3.code in line for line in capsys.readouterr().out.splitlines())

    assert main(["token", "revoke", str(identity.token_id)]) == 0
    assert "revoked" in capsys.readouterr().out
    assert refusal(basic("zhao.worker", secret)).status == 401
    assert main(["token", "list"]) == 0
    assert "revoked" in capsys.readouterr().out

    assert main(["user", "disable", "zhao.worker"]) == 0
    assert "disabled" in capsys.readouterr().out
    assert not m.AccessProfile.objects.get(user__username="zhao.worker").user.is_active


@pytest.mark.parametrize(
    "argv, says",
    [
        (["user", "add", "a", "--role", "chief"], "role must be one of"),
        (["user", "add", "a", "--role", "grid_worker", "--grid", "LEVEL2"], "must be bound to a level-3 grid"),
        (["user", "add", "a", "--role", "grid_worker"], "--grid CODE"),
        (["user", "disable", "ghost"], "no user 'ghost'"),
        (["token", "create", "ghost"], "no user 'ghost'"),
        (["token", "create", "li.analyst", "--expires-days", "0"], "--expires-days must be 1 or more"),
        (["token", "list", "ghost"], "no user 'ghost'"),
        (["token", "revoke", "987654321"], "no token with id 987654321"),
    ],
)
def test_cli_errors_say_what_to_change(analyst, level3, capsys, argv, says):
    argv = [level3.parent.code if a == "LEVEL2" else a for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("onemap: error: ") and says in err and "Traceback" not in err


# -- security headers ---------------------------------------------------------------


def test_security_headers_on_every_response(demo_db):
    client = Client(HTTP_HOST="127.0.0.1")
    plain = client.get("/healthz")
    assert plain.status_code == 200
    for name, value in [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]:
        assert plain.headers[name] == value
    assert "no-store" not in plain.headers.get("Cache-Control", "")
    assert "Authorization" in plain.headers["Vary"]  # an anonymous answer is never a signed-in one's, in any cache
    authorised = client.get("/healthz", HTTP_AUTHORIZATION="Bearer om_anything")
    assert authorised.headers["Cache-Control"] == "private, no-store"
    assert "Authorization" in authorised.headers["Vary"]


def test_a_views_own_cache_control_is_kept():
    from django.http import HttpResponse

    from api.middleware import SecurityHeadersMiddleware

    def view(request):
        response = HttpResponse("tile")
        response.headers["Cache-Control"] = "private, max-age=60"
        response.headers["Vary"] = "Accept"
        return response

    response = SecurityHeadersMiddleware(view)(factory.get("/", HTTP_AUTHORIZATION="Bearer om_x"))
    assert response.headers["Cache-Control"] == "private, max-age=60"
    assert response.headers["Vary"] == "Accept, Authorization"
    assert response.headers["X-Frame-Options"] == "DENY"
