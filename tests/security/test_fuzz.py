"""schemathesis over the server's OpenAPI document: every route, as anonymous, an analyst and a grid worker.

Each generated request (valid and deliberately invalid ones) is sent three times, once per
caller, to a server over a database of its own (writes land there, not in the shared test
database). No answer may be a 5xx, and none may hold what its caller has no right to:
personal data for anyone but a grid worker of its grid, another grid's rows for a grid
worker, an elder's alert for anyone, a successful write for a role that may not write.

``make test`` runs a few examples per route and mode; ``make test-security`` many more.
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from attacks import LONG, scratch_database
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from api.openapi import openapi_document

EXAMPLES = 150 if LONG else 6
# streams that never end: tested in tests/test_live.py and tests/test_mobile.py
SKIPPED = {("GET", "/screen/events"), ("GET", "/m/events")}
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
SCHEMA.config.generation.update(allow_x00=True)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
OPERATIONS = [op for op in OPERATIONS if (op.method.upper(), op.path) not in SKIPPED]
CALLERS = ("anonymous", "analyst", "worker")
PERSONAL = {"full_name", "phone", "id_card", "contacts", "birth_date", "notes_private"}
TALLY: dict[str, int] = {"cases": 0, "requests": 0}
# what a resident may write without signing in (the report page's endpoints); nothing else succeeds anonymously
RESIDENT_WRITES = re.compile(r"^/report/api/(reports|me-too|t/[^/]+/(rate|dispute))$")
_TALLY_LOCK = threading.Lock()


def _fuzz_database(database_url: str) -> str:
    """The fuzzing's scratch database, named after the run's test database (several checkouts share a server)."""
    return database_url.rsplit("/", 1)[1].split("?", 1)[0] + "_fuzz"


@pytest.fixture(scope="module")
def fuzz_target(database_url):
    """A server over a database of its own with the demo, and the three callers' credentials."""
    from servers import ServerProcess

    url, accounts = scratch_database(database_url, _fuzz_database(database_url), roles={
        "analyst": ("analyst", None), "worker": ("grid_worker", "first")})
    import psycopg

    with psycopg.connect(url) as conn:
        grid = conn.execute("SELECT code FROM grids WHERE level = 3 ORDER BY code LIMIT 1").fetchone()[0]
        incident = conn.execute("SELECT i.id FROM incidents i JOIN grids g ON g.id = i.grid_id WHERE g.code = %s "
                                "AND i.category <> 'elder_inactivity' ORDER BY i.id LIMIT 1", [grid]).fetchone()[0]
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    server = ServerProcess(root=root, database_url=url, log_path=root / ".var" / "test-fuzz-server.log",
                           workers=2).start()
    yield server.base_url, {"anonymous": None, **accounts}, grid, incident
    server.stop()
    print(f"\nschemathesis: {TALLY['cases']} generated cases, {TALLY['requests']} requests "
          f"({len(OPERATIONS)} operations, profile {'long' if LONG else 'quick'})")


def _cases() -> list:
    """(operation, mode) pairs: valid requests for every operation, invalid ones where there is something to spoil."""
    cases = []
    for op in OPERATIONS:
        label = f"{op.method.upper()} {op.path}"
        cases.append(pytest.param(op, GenerationMode.POSITIVE, id=f"{label} valid"))
        if _spoilable(op.path, op.method):
            cases.append(pytest.param(op, GenerationMode.NEGATIVE, id=f"{label} invalid"))
    return cases


def _spoilable(path: str, method: str) -> bool:
    """The operation takes a query parameter, a header or a body (a wrong path parameter would be another URL).

    A body that is any bytes at all (an upload, checked by its content) has no invalid form to generate.
    """
    document = openapi_document()
    operation = document["paths"][path][method.lower()]
    shared = document["components"]["parameters"]
    places = {(shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p)["in"] for p in operation["parameters"]}
    contents = operation.get("requestBody", {}).get("content", {}).values()
    any_bytes = bool(contents) and all(c.get("schema") == {"type": "string", "format": "binary"} for c in contents)
    return bool(places & {"query", "header"}) or ("requestBody" in operation and not any_bytes)


@pytest.mark.parametrize("operation, mode", _cases())
def test_no_route_answers_5xx_or_more_than_the_caller_may_see(fuzz_target, operation, mode):
    base_url, accounts, grid, _ = fuzz_target
    session = requests.Session()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not LONG,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def attack(case):
        with _TALLY_LOCK:
            TALLY["cases"] += 1
        for caller in CALLERS:
            credentials = accounts[caller]
            try:
                response = case.call(base_url=base_url, session=session, timeout=60, allow_redirects=False,
                                     auth=credentials)
            except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, UnicodeError, ValueError):
                continue  # requests would not send it: nothing reached the server
            with _TALLY_LOCK:
                TALLY["requests"] += 1
            _check(response, caller=caller, grid=grid, method=case.method.upper(), path=operation.path)

    attack()


def _check(response: requests.Response, *, caller: str, grid: str, method: str, path: str) -> None:
    where = f"{method} {response.request.url} as {caller}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    if not 200 <= response.status_code < 300:
        return
    route = urlsplit(response.request.url).path
    if route.startswith("/report/moderation") or route.startswith("/report/api/moderation"):
        raise AssertionError(f"{where}: the moderation answered a caller who is not staff")
    if method in ("POST", "PUT", "PATCH", "DELETE") and not RESIDENT_WRITES.match(route):
        assert caller == "worker" and ("/collections/incidents/" in route or route.startswith("/m/api/")), \
            f"{where}: a write succeeded"
    if route.startswith("/screen/") and not route.startswith("/screen/density"):
        raise AssertionError(f"{where}: the big screen answered a caller without a screen role")
    if route.startswith("/screen/density") and caller not in ("analyst",):
        raise AssertionError(f"{where}: the density answered a caller without the role")
    for restricted in ("cameras", "incidents", "care_density"):
        if f"/collections/{restricted}/items" in route and caller == "anonymous":
            raise AssertionError(f"{where}: an anonymous caller read {restricted}")
    if "/collections/care_subjects/" in route and caller != "worker":
        raise AssertionError(f"{where}: personal data for a caller without a right to it")
    if "json" not in response.headers.get("Content-Type", ""):
        return
    try:
        document = response.json()
    except ValueError:
        return
    features = document.get("features", [document]) if isinstance(document, dict) else []
    for feature in features:
        if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
            continue
        properties = feature["properties"]
        assert properties.get("category") != "elder_inactivity", f"{where}: an elder's alert was published"
        if caller == "worker" and "grid_code" in properties:
            assert properties["grid_code"] == grid, f"{where}: grid {properties['grid_code']} for a worker of {grid}"
        if caller != "worker":
            assert not PERSONAL & properties.keys(), f"{where}: personal fields {PERSONAL & properties.keys()}"


def _path_for(path: str, grid: str, incident: int) -> str:
    """A documented path with plausible values in its path parameters."""
    values = {"collectionId": "incidents", "featureId": str(incident), "incidentId": str(incident), "caseId": "1",
              "notificationId": "1", "tileMatrixSetId": "WebMercatorQuad", "z": "15", "y": "1", "x": "1",
              "day": "2026-11-20", "format": "json", "kind": "keyframe", "action": "accept", "code": "RNOSUCHCODE2",
              "reportId": "1", "service_code": "sanitation", "service_request_id": "1", "token": "RABCDEFGHJKM",
              "name": "0" * 64 if path.startswith("/m/") else "1.jpg"}
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


@pytest.mark.parametrize("caller", ["worker", "analyst"])
def test_a_nul_in_any_query_parameter_is_a_client_error(fuzz_target, caller):
    """Every documented query parameter of every GET, given a NUL character, answers below 500.

    Generated cases reach a NUL in one parameter only now and then; this sends it to each one.
    (``/api/cases/?grid=%00`` was a 500: the NUL reached PostgreSQL.)
    """
    base_url, accounts, grid, incident = fuzz_target
    document = openapi_document()
    shared = document["components"]["parameters"]
    tried = 0
    for path, item in document["paths"].items():
        operation = item.get("get")
        if operation is None or ("GET", path) in SKIPPED:
            continue
        for parameter in operation["parameters"]:
            parameter = shared[parameter["$ref"].rsplit("/", 1)[1]] if "$ref" in parameter else parameter
            if parameter["in"] != "query":
                continue
            url = base_url + _path_for(path, grid, incident)
            response = requests.get(url, params={parameter["name"]: "a\x00b"}, auth=accounts[caller], timeout=60)
            tried += 1
            assert response.status_code < 500, (path, parameter["name"], response.status_code, response.text[:300])
    assert tried > 50


def test_every_route_of_the_server_is_in_the_document():
    """A new route must be described in api/openapi.py, so that this suite attacks it too."""
    from django.urls import URLPattern, URLResolver, get_resolver

    from api.openapi import documented_routes

    def names(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from names(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield pattern.name

    served = set(names(get_resolver().url_patterns))
    assert None not in served, "every URL pattern needs a name, so that the document can say it describes it"
    assert served <= documented_routes(), f"routes not in the OpenAPI document: {served - documented_routes()}"
    assert json.dumps(openapi_document()).count('"$ref": "http') == 0  # self-contained: nothing to fetch


# ---------------------------------------------------------------- CQL2 and JSON bodies, by hypothesis

from hypothesis import strategies as st

from layers.catalogue import LAYERS

PROPERTIES = sorted({c.name for layer in LAYERS for c in layer.columns} | {"geometry", "id", "nosuch", "\x00"})
ODD_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)  # unicode, NUL, quotes, controls
NUMBERS = st.one_of(st.integers(min_value=-10**30, max_value=10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["1e400", "-0", "2147483647", "9223372036854775808", "0x10", "1.", ".5"]))


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _cql_text() -> st.SearchStrategy[str]:
    """CQL2 text, mostly well formed, often not: comparisons, logic, spatial and temporal calls, deep and long."""
    prop = st.sampled_from(PROPERTIES).map(lambda p: p if p.isidentifier() else f'"{p}"')
    literal = st.one_of(NUMBERS.map(str), ODD_TEXT.map(_quoted), st.sampled_from(
        ["TRUE", "FALSE", "NULL", "TIMESTAMP('2026-12-07T00:00:00Z')", "DATE('9999-12-31')", "DATE('0000-00-00')",
         "INTERVAL('..', '2026-01-01')", "POINT(113.6 34.7)", "POINT(1e400 0)", "BBOX(113, 34, 114, 35)",
         "POLYGON((0 0, 1 1, 0 1, 1 0, 0 0))", "LINESTRING(0 0)", "BBOX(1,2,3)", "()"]))
    scalar = st.recursive(st.one_of(prop, literal), lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "div", "^"]), inner).map(" ".join),
        inner.map(lambda x: f"({x})"), inner.map(lambda x: f"-{x}"),
        st.tuples(st.sampled_from(["CASEI", "ACCENTI", "abs", "nosuch"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
    ), max_leaves=12)
    comparison = st.one_of(
        st.tuples(scalar, st.sampled_from(["=", "<>", "<", ">", "<=", ">=", "LIKE", "NOT LIKE"]), scalar).map(" ".join),
        st.tuples(scalar, st.lists(scalar, max_size=5)).map(lambda t: f"{t[0]} IN ({', '.join(t[1])})"),
        st.tuples(scalar, scalar, scalar).map(lambda t: f"{t[0]} BETWEEN {t[1]} AND {t[2]}"),
        scalar.map(lambda x: f"{x} IS NULL"), scalar.map(lambda x: f"{x} IS NOT NULL"),
        st.tuples(st.sampled_from(["S_INTERSECTS", "S_WITHIN", "S_CONTAINS", "S_DISJOINT", "T_INTERSECTS",
                                   "T_BEFORE", "A_CONTAINS"]), scalar, scalar).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
    )
    predicate = st.recursive(comparison, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(" ".join),
        inner.map(lambda x: f"NOT ({x})"), inner.map(lambda x: f"({x})"),
    ), max_leaves=10)
    chains = st.tuples(st.integers(1, 3000), st.sampled_from(["1 + ", "(", "NOT ", "a AND "])).map(
        lambda t: f"severity = {t[1] * t[0]}1" + (")" * t[0] if t[1] == "(" else ""))
    return st.one_of(predicate, chains, ODD_TEXT, st.binary(max_size=60).map(lambda b: b.decode("latin-1")))


def _json_values(depth: int = 4) -> st.SearchStrategy:
    leaves = st.one_of(st.none(), st.booleans(), NUMBERS.filter(lambda n: not isinstance(n, str)), ODD_TEXT)
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(ODD_TEXT, st.sampled_from(
            ["op", "args", "property", "type", "coordinates", "interval", "timestamp", "date", "bbox"])), inner,
            max_size=4)), max_leaves=20)


def _cql_json() -> st.SearchStrategy[str]:
    ops = st.sampled_from(["=", "<", "and", "or", "not", "like", "in", "between", "isNull", "s_intersects",
                           "t_before", "a_equals", "+", "casei", "nosuch"])
    node = st.recursive(_json_values(), lambda inner: st.fixed_dictionaries(
        {"op": ops, "args": st.lists(st.one_of(inner, st.fixed_dictionaries({"property": st.sampled_from(PROPERTIES)})),
                                     max_size=4)}), max_leaves=15)
    deep = st.integers(1, 5000).map(lambda n: '{"op": "not", "args": [' * n + "true" + "]}" * n)
    return st.one_of(node.map(lambda v: json.dumps(v, allow_nan=True)), deep, ODD_TEXT)


@settings(max_examples=3000 if LONG else 300, deadline=None, database=None, derandomize=not LONG,
          suppress_health_check=list(HealthCheck))
@given(text=st.one_of(_cql_text().map(lambda t: ("cql2-text", t)), _cql_json().map(lambda t: ("cql2-json", t))))
def test_the_cql2_compiler_refuses_with_a_filter_error_or_compiles(text):
    """Parsing and compiling any text raises only FilterError (a 400), never another exception (a 500)."""
    from layers.cql import FilterError, filter_sql, parse_filter
    from layers.features import queryables

    lang, value = text
    try:
        expression = parse_filter(value, lang=lang)
        for layer in LAYERS:
            try:
                filter_sql(expression, queryables=queryables(layer, "administrator")).as_string(None)
            except FilterError:
                pass
    except FilterError:
        pass


def test_generated_filters_answer_200_or_400_and_the_pool_stays_healthy(fuzz_target):
    base_url, accounts, grid, _ = fuzz_target
    session = requests.Session()
    statuses: dict[int, int] = {}
    # every layer each caller may read (a layer they may not read is a 403 before any filter is looked at)
    pairs = [(layer.id, caller) for layer in LAYERS for caller, role in (("analyst", "analyst"), ("worker", "grid_worker"))
             if layer.id != "care_subjects" and layer.readable_by(role)]

    @settings(max_examples=1500 if LONG else 150, deadline=None, database=None, derandomize=not LONG,
              suppress_health_check=list(HealthCheck))
    @given(pair=st.sampled_from(pairs),
           text=st.one_of(_cql_text().map(lambda t: ("cql2-text", t)), _cql_json().map(lambda t: ("cql2-json", t))))
    def attack(pair, text):
        layer, caller = pair
        lang, value = text
        response = session.get(f"{base_url}/ogc/collections/{layer}/items", auth=accounts[caller], timeout=60,
                               params={"filter": value, "filter-lang": lang, "limit": "5"})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in (200, 400, 414), f"{lang} {value[:200]!r}: {response.status_code} " \
                                                        f"{response.text[:300]}"
        if response.status_code == 400:
            assert response.json()["description"]
        if response.status_code == 200 and caller == "worker":
            for feature in response.json()["features"]:
                assert feature["properties"].get("grid_code", grid) == grid, (layer, value)

    attack()
    print(f"\ngenerated filters over HTTP: {statuses}")
    for caller in ("anonymous", "analyst", "worker"):  # the pool serves everyone after the attack
        for path in ("/ogc/collections/grids/items?limit=2", "/ogc/collections/grids/items?f=html&limit=2",
                     "/ogc/collections/buildings/items?filter=floors%20%3E%202&limit=2"):
            assert session.get(base_url + path, auth=accounts[caller], timeout=60).status_code == 200


def test_generated_json_bodies_never_get_a_5xx(fuzz_target):
    """Deep, long, oddly typed, unicode and NUL JSON posted as features: 201, or a 4xx that says why."""
    base_url, accounts, _, incident = fuzz_target
    session = requests.Session()
    statuses: dict[int, int] = {}
    feature = st.fixed_dictionaries({"type": st.one_of(st.just("Feature"), _json_values()),
                                     "geometry": st.one_of(_json_values(), st.fixed_dictionaries(
                                         {"type": st.sampled_from(["Point", "Polygon", "LineString", "point"]),
                                          "coordinates": _json_values()})),
                                     "properties": st.one_of(_json_values(), st.dictionaries(
                                         st.sampled_from(PROPERTIES), _json_values()))})
    body = st.one_of(feature.map(lambda v: json.dumps(v, allow_nan=True)),
                     st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n), ODD_TEXT)

    @settings(max_examples=1500 if LONG else 150, deadline=None, database=None, derandomize=not LONG,
              suppress_health_check=list(HealthCheck))
    @given(body=body, method=st.sampled_from(["POST", "PUT", "PATCH"]))
    def attack(body, method):
        url = f"{base_url}/ogc/collections/incidents/items" + ("" if method == "POST" else f"/{incident}")
        response = session.request(method, url, data=body.encode("utf-8", "surrogatepass"), auth=accounts["worker"],
                                   timeout=60, headers={"Content-Type": "application/geo+json"})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, f"{method} {body[:200]!r}: {response.status_code} {response.text[:300]}"

    attack()
    print(f"\ngenerated bodies: {statuses}")


def test_generated_sensor_events_never_get_a_5xx(fuzz_target, database_url):
    """Device messages of every shape, posted by the device itself to the HTTP ingest: 200, or a 4xx that says why.

    A server of its own with the per-device rate limit lifted, so the parser, not the limit, answers.
    """
    import secrets
    from pathlib import Path

    import psycopg
    from servers import ServerProcess

    from gis.care.passwords import password_digest

    from datetime import datetime

    from host.embedded_db import with_database_name

    url = with_database_name(database_url, _fuzz_database(database_url))  # fuzz_target's, made with the demo
    code, password = "FUZZ-SENSOR-1", secrets.token_urlsafe(16)
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM device_credentials WHERE username = %s", [code])
        conn.execute("INSERT INTO sensors (code, synthetic, kind, status, geom) VALUES (%s, true, 'door_magnet', "
                     "'online', ST_SetSRID(ST_MakePoint(113.66, 34.75), 4326)) ON CONFLICT (code) DO NOTHING", [code])
        conn.execute("INSERT INTO device_credentials (username, kind, digest) VALUES (%s, 'sensor', %s)",
                     [code, password_digest(password)])
    root = Path(__file__).resolve().parents[2]
    server = ServerProcess(root=root, database_url=url, log_path=root / ".var" / "test-fuzz-sensors.log", workers=1,
                           env={"ONEMAP_INGEST_RATE": "100000", "ONEMAP_INGEST_BURST": "100000"}).start()
    session = requests.Session()
    statuses: dict[int, int] = {}
    field = st.one_of(_json_values(), st.integers(-10, 10**20), ODD_TEXT,
                      st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()))
    types = st.sampled_from(["door_open", "door_close", "motion", "sighting", "heartbeat", "battery"])
    wild = st.fixed_dictionaries({"ts": field, "type": st.one_of(types, field), "seq": field},
                                 optional={"battery_pct": field, "note": _json_values()})
    plausible = st.fixed_dictionaries(
        {"ts": st.datetimes(max_value=datetime(2026, 1, 1), timezones=st.timezones()).map(lambda d: d.isoformat()),
         "type": types, "seq": st.integers(-5, 2**64)},
        optional={"battery_pct": st.integers(-5, 105), "note": _json_values()})
    message = st.one_of(wild, plausible)
    body = st.one_of(message.map(json.dumps), st.lists(message, max_size=5).map(json.dumps),
                     _json_values().map(lambda v: json.dumps(v, allow_nan=True)), ODD_TEXT,
                     st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n))

    @settings(max_examples=1500 if LONG else 150, deadline=None, database=None, derandomize=not LONG,
              suppress_health_check=list(HealthCheck))
    @given(body=body)
    def attack(body):
        response = session.post(f"{server.base_url}/api/sensors/{code}/events", auth=(code, password), timeout=60,
                                data=body.encode("utf-8", "surrogatepass"), headers={"Content-Type": "application/json"})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in (200, 400, 413), f"{body[:200]!r}: {response.status_code} {response.text[:300]}"
        if response.status_code == 400:
            assert response.json()["error"]

    try:
        attack()
    finally:
        server.stop()
    print(f"\ngenerated sensor events: {statuses}")

