"""Who sees which rows: database roles and row-level-security policies, and scoped transactions.

Every OGC request runs in a transaction that first switches to one of four database
roles and records the caller's grid in a per-transaction setting::

    anonymous                 -> onemap_public   public tables only
    analyst, department       -> onemap_analyst  every non-personal row
    administrator, commander  -> onemap_staff    every row, personal ones too
    grid_worker               -> onemap_grid     rows of ``onemap.grid_id`` only

The policies are written per database role, so each role's planner sees one plain
predicate (``grid_id = <setting>``) that indexes can serve. A grid worker's rows are
limited by PostgreSQL itself: even a raw query made under the role and setting cannot
read another grid. The table owner (migrations, loaders, services run by operators)
is not subject to the policies.
"""

from __future__ import annotations

import functools
import re
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generator, Iterator, TypeVar

from psycopg import Error, OperationalError, errors, pq, sql

from core.roles import ALL_DB_ROLES as _ALL_ROLES
from core.roles import DB_ROLES
from core.settings import settings
from layers.catalogue import LAYERS

T = TypeVar("T")

_PERSONAL_TABLES = ("care_subjects", "care_subject_private")
# rows that go with an editable table's row when it is deleted (Django cascades them itself,
# so the role that deletes must be able to read and delete them too)
# (and rows that only point at it, which Django sets to NULL: a merged case, a resident's report)
_CASCADED = {"incidents": ("incident_status_changes", "cases", "case_events", "case_tasks", "reports")}
# rows a scoped write of an editable table adds with it: a new incident opens its case, which
# writes its first audit row (every incident is a case from its first moment)
_WRITTEN_WITH = {"incidents": ("cases", "case_events")}
# tables under the published views, with how a grid worker's rows are found
_GRID_PREDICATE = {
    "grids": "id = current_setting('onemap.grid_id')::bigint",
    "care_subject_private": "EXISTS (SELECT 1 FROM care_subjects s WHERE s.id = subject_id)",
    # a case is a grid worker's when its incident is (the incidents' own policy decides), or when
    # a resident's pin lay within 30 m of their grid (gis.reports: the neighbour sees it too)
    "cases": "EXISTS (SELECT 1 FROM incidents i WHERE i.id = incident_id)"
             " OR near_grid_id = current_setting('onemap.grid_id')::bigint",
    "case_events": "EXISTS (SELECT 1 FROM cases c WHERE c.id = case_id)",
    "departments": "true",  # units beyond the grids: every staff role sees all of them
}
# what a grid worker may read beyond their grid: an incident whose case was dispatched to them
# (dispatch goes to the nearest worker by walking time, who may belong to the next grid). Reads
# only: their writes stay fenced to their grid. The function looks at cases as its owner, so the
# incidents' policy and the cases' (which asks the incidents') do not call each other forever.
_GRID_READ_EXTRA = {"incidents": "onemap_assigned_to_me(id)"}
_ASSIGNED_FUNCTION = """
CREATE OR REPLACE FUNCTION onemap_assigned_to_me(incident bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT EXISTS (SELECT 1 FROM cases c WHERE c.incident_id = incident
                   AND c.assignee_id = nullif(current_setting('onemap.worker_id', true), '')::bigint)
$$
"""
# the one way a grid worker deletes an incident: withdrawing their own new report (gis migration 0026).
# Their role has no DELETE on incidents; these functions check the rule as the tables' owner.
_WITHDRAW_FUNCTIONS = ("onemap_withdraw_refusal(bigint)", "onemap_incident_withdraw(bigint)")
# tables the faces read under the caller's scope that no layer publishes (the cases API)
_SCOPED_TABLES = ("cases", "case_events")
_DEFAULT_GRID_PREDICATE = "grid_id = current_setting('onemap.grid_id')::bigint"
# a grid worker's writes must also lie inside the grid polygon, whatever grid_id says
_WRITE_CHECK = (
    "grid_id = current_setting('onemap.grid_id')::bigint AND ST_CoveredBy(geom, "
    "(SELECT g.geom FROM grids g WHERE g.id = current_setting('onemap.grid_id')::bigint))"
)


def db_role(role: str) -> str:
    """The database role a user role reads and writes with."""
    return DB_ROLES[role]


def scope_statements(identity) -> str:
    """``SET LOCAL`` of the identity's database role (and a grid worker's grid): the per-transaction scope.

    Every scoped transaction also gets the request statement timeout
    (``ONEMAP_STATEMENT_TIMEOUT_S``), so no request can hold a connection for long.
    """
    return _scope_statements(db_role(identity.role), identity.grid_id, identity.worker_id, _statement_timeout_ms())


@functools.cache
def _statement_timeout_ms() -> int:
    return int(settings().statement_timeout_s * 1000)


@functools.lru_cache(maxsize=4096)
def _scope_statements(role: str, grid_id: int | None, worker_id: int | None, timeout_ms: int) -> str:
    statements = sql.SQL("SET LOCAL ROLE {}; SET LOCAL statement_timeout = {};").format(
        sql.Identifier(role), sql.Literal(timeout_ms)
    )
    if grid_id is not None:
        statements += sql.SQL(" SET LOCAL onemap.grid_id = {};").format(sql.Literal(str(int(grid_id))))
    if worker_id is not None:
        statements += sql.SQL(" SET LOCAL onemap.worker_id = {};").format(sql.Literal(str(int(worker_id))))
    return statements.as_string(None)


@contextmanager
def scoped_connection(identity) -> Iterator:
    """A pooled connection inside one transaction under the identity's role and grid.

    The transaction opens and takes the scope in one round trip (the pool's
    connections are in autocommit, so ``BEGIN`` is ours to send); it commits when
    the block ends and rolls back when it raises.
    """
    from layers.db import pool

    for attempt in (1, 2):
        with pool().connection() as conn:
            try:
                conn.execute(f"BEGIN; {scope_statements(identity)}")
            except OperationalError:
                if attempt == 2:
                    raise
                continue  # a connection broken by a server restart: the pool drops it, try a fresh one
            try:
                yield conn
            except BaseException:
                _rollback_or_close(conn)
                raise
            conn.execute("COMMIT")
            return


def scoped_fetchone(identity, statement: str, params, *, generic_plan: bool = False,
                    raw: frozenset[int] = frozenset()) -> tuple | None:
    """Run one read statement under the identity's scope in a single round trip; its first row.

    The scope (``SET LOCAL``) and ``EXECUTE`` of the statement travel as one
    simple-protocol batch, which PostgreSQL runs as one implicit transaction: on a
    busy two-core machine each round trip costs more than the statement. The
    statement is prepared on the connection the first time it is used there (in the
    same batch), so the server plans it once, not per request; a plan made under
    one role is re-planned by PostgreSQL for another.

    ``generic_plan`` runs it with its generic plan (``plan_cache_mode``), planned once per
    connection: by default PostgreSQL plans a statement with parameters afresh on every
    run (a custom plan) whenever that looks cheaper, and for the published views with
    their joins and policies planning costs more than running a page of 100 or one item.
    Callers ask for it only where the parameters' values cannot change the best plan
    (no bbox or time range, whose selectivity ranges from one row to the whole layer).

    The columns whose positions are in ``raw`` come back as the bytes PostgreSQL sent (its
    UTF-8 text), not decoded: a page of features goes out as bytes, and decoding 46 kB of
    text with Chinese in it to ``str`` and encoding it back costs more than the rest of a
    first page's Python.
    """
    from layers.db import read_connection

    for attempt in (1, 2):
        with read_connection() as conn:
            try:
                return _run_batch(conn, identity, statement, params, generic_plan=generic_plan, raw=raw)
            except OperationalError:
                if conn.closed and attempt == 1:
                    continue  # a connection broken by a server restart: the pool drops it, try a fresh one
                raise


@dataclass(frozen=True)
class Read:
    """One scoped read that a read's steps ask for (:func:`run_reads`): the arguments of :func:`scoped_fetchone`."""

    identity: object
    statement: str
    params: tuple | list
    generic_plan: bool = False
    raw: frozenset[int] = frozenset()


def run_reads(steps: Generator["Read", tuple | None, T]) -> T:
    """Make on this thread the reads ``steps`` asks for; what it returns.

    ``steps`` is a generator that yields each :class:`Read` it needs and is sent that
    read's first row (or None). Written that way, the work around a read — building the
    statement before it, the document after it — is the same code whether the read is
    made here or on the server's event loop (:func:`layers.loop_reads.run_reads_on_loop`).
    What the database says about the client's request becomes an OGC error here, as in
    :class:`layers.errors.database_errors`.
    """
    from layers.errors import database_errors

    try:
        read = next(steps)
        while True:
            with database_errors():
                row = scoped_fetchone(read.identity, read.statement, read.params, generic_plan=read.generic_plan,
                                      raw=read.raw)
            read = steps.send(row)
    except StopIteration as done:
        return done.value


# statements prepared on each pooled connection: {connection: {statement text: name}}
_PREPARED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_PREPARED_PER_CONNECTION = 256
# statements the server would not prepare (a parameter whose type it cannot infer): run inline
_INLINE: set[str] = set()


# a statement prepared earlier that the server no longer runs as prepared: "cached plan must not
# change result type" after a view changed (0A000), or a name gone from the connection (26000)
_STALE_PLAN = {"0A000", "26000"}


_GENERIC_PLAN = " SET LOCAL plan_cache_mode = force_generic_plan;"


def _run_batch(conn, identity, statement: str, params, *, generic_plan: bool = False,
               raw: frozenset[int] = frozenset()) -> tuple | None:
    steps = read_steps(conn, identity, statement, params, generic_plan=generic_plan, raw=raw)
    text = next(steps)
    while True:
        try:
            result = _exec(conn, text)
        except Error as exc:
            text = steps.throw(exc)
            continue
        try:
            text = steps.send(result)
        except StopIteration as done:
            return done.value


def read_steps(conn, identity, statement: str, params, *, generic_plan: bool = False,
               raw: frozenset[int] = frozenset()) -> Generator[str, object, tuple | None]:
    """One read on ``conn`` as steps: yields each batch to send, is sent its result (or has its psycopg error
    thrown in), returns the first row. The thread path (:func:`_run_batch`) and the event loop
    (:mod:`layers.loop_reads`) send the batches, each its own way; what to send is decided here.

    The statement is prepared on the connection the first time, in the read's batch. A
    batch that fails is cleared away (``ROLLBACK``, and ``DEALLOCATE ALL``: whatever it
    prepared is gone too); then a statement prepared before a migration changed what it
    reads is prepared afresh once, and one the server would not prepare (a parameter whose
    type it cannot infer) is sent with its literals; any other error is raised. A
    connection that closed is not cleared: its error is raised for the caller to retry.
    """
    prepared = _PREPARED.setdefault(conn, {})
    retried = False
    while True:
        text, name, prepares = _batch_text(conn, prepared, identity, statement, params, generic_plan=generic_plan)
        try:
            result = yield text
        except Error as exc:
            if conn.closed:
                raise exc
            prepared.clear()
            try:  # a failed batch leaves no transaction open; a failed ROLLBACK might
                yield ("ROLLBACK; " if conn.info.transaction_status != 0 else "") + "DEALLOCATE ALL; SELECT 1"
            except Error:
                conn.close()  # the pool discards it rather than hand a poisoned connection to the next read
                raise exc from None
            if not prepares:
                if name is not None and exc.sqlstate in _STALE_PLAN and not retried:
                    retried = True  # prepared before a migration changed what it reads: prepare it afresh, once
                    continue
                raise exc
            _INLINE.add(statement)  # once more without preparing; if that fails as well, it was not the PREPARE
            try:
                return (yield from read_steps(conn, identity, statement, params, generic_plan=generic_plan, raw=raw))
            except Error:
                _INLINE.discard(statement)
                raise
        if prepares:
            prepared[statement] = name
        return _first_row(result, _transformer(conn), raw)


def _batch_text(conn, prepared: dict, identity, statement: str, params, *,
                generic_plan: bool) -> tuple[str, str | None, bool]:
    """The one simple-protocol batch that reads ``statement`` on ``conn``: (its text, the statement's name on the
    connection or None when it runs inline, whether the batch prepares it).

    ``prepared`` is what the connection has prepared ({statement: name}); a connection that holds too many
    starts the batch by dropping them all.
    """
    name = prepared.get(statement)
    head = ""
    if name is None and statement not in _INLINE:
        if len(prepared) >= _PREPARED_PER_CONNECTION:
            head = "DEALLOCATE ALL; "
            prepared.clear()
        name = f"onemap_{len(prepared)}"
        head += f"PREPARE {name} AS {_numbered_placeholders(statement)}; "
    transformer = _transformer(conn)
    if name is None:
        call = _inlined(statement, params, transformer)
    elif params:
        call = f"EXECUTE {name}({', '.join(_literal(p, transformer) for p in params)})"
    else:
        call = f"EXECUTE {name}"
    scope = scope_statements(identity) + (_GENERIC_PLAN if generic_plan else "")
    return f"{head}{scope} {call}", name, "PREPARE" in head


def _first_row(result, transformer, raw: frozenset[int] = frozenset()) -> tuple | None:
    """The first row of a result (None when it has none), the columns in ``raw`` as the bytes the server sent."""
    if result.ntuples == 0:
        return None
    transformer.set_pgresult(result)
    if not raw:
        return transformer.load_row(0, tuple)
    row = []
    for column in range(result.nfields):
        value = result.get_value(0, column)
        if value is not None and column not in raw:
            value = transformer.get_loader(result.ftype(column), result.fformat(column)).load(value)
        row.append(value)
    return tuple(row)


def _exec(conn, text: str):
    """Send one simple-protocol batch with libpq's ``PQexec``; its last result, or the psycopg error it raised.

    psycopg's cursor costs several times libpq's own call per round trip (its
    generators, result sets and row objects), which for an item by id is more than
    PostgreSQL's work. The batch's earlier results (``PREPARE``, ``SET LOCAL``) carry
    nothing, so only the last one is read. libpq lets go of the GIL while it waits.
    """
    return checked(conn, conn.pgconn.exec_(text.encode()))


def checked(conn, result):
    """A batch's result when it holds rows; else the psycopg error it stands for, raised.

    A connection the server dropped mid-batch is closed here (the pool discards it) and
    the error is an ``OperationalError``, which the callers retry on a fresh connection.
    """
    if result.status == pq.ExecStatus.TUPLES_OK:
        return result
    if result.status == pq.ExecStatus.FATAL_ERROR:
        sqlstate = (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
        message = result.error_message.decode(errors="replace").strip()
        try:
            error = errors.lookup(sqlstate) if sqlstate else OperationalError
        except KeyError:  # a state psycopg does not name
            error = errors.DatabaseError
        if conn.pgconn.status != pq.ConnStatus.OK:
            conn.close()  # the server went away mid-batch: the pool drops this connection
            error = OperationalError
        raise error(message.removeprefix("ERROR:").strip())
    raise OperationalError(f"unexpected result from the database: {result.status.name}")


def _transformer(conn):
    """psycopg's adapter for ``conn`` (values to SQL literals, result fields to Python), one per connection."""
    from psycopg.adapt import Transformer

    transformer = _TRANSFORMERS.get(conn)
    if transformer is None:
        transformer = _TRANSFORMERS[conn] = Transformer(conn)
    return transformer


_TRANSFORMERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _literal(value, transformer) -> str:
    return "NULL" if value is None else transformer.as_literal(value).decode()


def _inlined(statement: str, params, transformer) -> str:
    """``statement`` with its ``%s`` placeholders replaced by the literals of ``params`` (``%%`` as ``%``)."""
    values = iter(params or ())
    return _PLACEHOLDER.sub(lambda m: "%" if m.group() == "%%" else _literal(next(values), transformer), statement)


def _rollback_or_close(conn) -> bool:
    """End whatever transaction is open on ``conn``; close it when even that fails. True if it is usable."""
    if conn.closed:
        return False
    try:
        if conn.info.transaction_status != 0:  # not idle
            conn.execute("ROLLBACK")
        return True
    except Error:
        conn.close()
        return False


@functools.lru_cache(maxsize=1024)
def _numbered_placeholders(statement: str) -> str:
    """psycopg's ``%s`` placeholders as PostgreSQL's ``$1, $2, …`` (and ``%%`` as ``%``)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda m: "%" if m.group() == "%%" else f"${next(counter)}", statement)


_PLACEHOLDER = re.compile(r"%%|%s")


@contextmanager
def scoped_django(identity, *, using: str = "default") -> Iterator[None]:
    """Django ORM work (the gis services) in one transaction under the identity's role and grid.

    The transaction also names its actor (``onemap.actor``), which the incidents' status
    history records, and its user (``onemap.user_id``), by which the database knows who
    reported an incident (``onemap_incident_withdraw``).
    """
    from django.db import connections, transaction

    with transaction.atomic(using=using):
        with connections[using].cursor() as cursor:
            cursor.execute(scope_statements(identity))
            if identity.username or identity.user_id is not None:  # one round trip for both
                user_id = "" if identity.user_id is None else str(int(identity.user_id))
                cursor.execute("SELECT set_config('onemap.actor', %s, true), set_config('onemap.user_id', %s, true)",
                               [identity.username or "", user_id])
        yield


def sync_row_security(*, using: str = "default") -> None:
    """(Re)create the roles, grants and policies; idempotent, run after every migrate."""
    from django.db import connections

    with connections[using].cursor() as cursor:
        raw = cursor.connection
        for statement in _security_statements(_existing_tables(cursor)):
            cursor.execute(statement.as_string(raw))


def _existing_tables(cursor) -> set[str]:
    cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in cursor.fetchall()}


def _security_statements(existing: set[str]) -> Iterator[sql.Composable]:
    yield from _role_statements()
    read_extra = _GRID_READ_EXTRA if "cases" in existing else {}
    if read_extra:
        yield sql.SQL(_ASSIGNED_FUNCTION)
        yield sql.SQL("REVOKE ALL ON FUNCTION onemap_assigned_to_me(bigint) FROM PUBLIC")
        yield sql.SQL("GRANT EXECUTE ON FUNCTION onemap_assigned_to_me(bigint) TO onemap_grid")
    tables = _layer_tables() | (existing & set(_SCOPED_TABLES))
    public_tables = {layer.table for layer in LAYERS if layer.public and not layer.view_body}
    editable = {layer.table for layer in LAYERS if layer.editing}
    # DELETE only for the database roles of the catalogue's delete_roles (withdrawing goes through a function)
    deleters = {layer.table: sorted({DB_ROLES[r] for r in layer.editing.delete_roles}) for layer in LAYERS
                if layer.editing}
    ident = sql.Identifier
    everyone = sql.SQL(", ").join(map(ident, _ALL_ROLES))
    yield sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(everyone)
    for table in sorted(tables):
        readers = [r for r in _ALL_ROLES if _may_read(r, table, public_tables)]
        yield sql.SQL("REVOKE ALL ON {} FROM {}").format(ident(table), everyone)
        yield sql.SQL("GRANT SELECT ON {} TO {}").format(ident(table), sql.SQL(", ").join(map(ident, readers)))
        yield sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(ident(table))
        yield from _policies(table, public=table in public_tables, editable=table in editable,
                             grid_deletes="onemap_grid" in deleters.get(table, ()), read_extra=read_extra.get(table))
    for table in sorted(editable):
        writers = sql.SQL(", ").join(map(ident, ("onemap_analyst", "onemap_staff", "onemap_grid")))
        yield sql.SQL("GRANT INSERT, UPDATE ON {} TO {}").format(ident(table), writers)
        if deleters[table]:
            yield sql.SQL("GRANT DELETE ON {} TO {}").format(
                ident(table), sql.SQL(", ").join(map(ident, deleters[table])))
        yield sql.SQL(
            "GRANT USAGE ON SEQUENCE {} TO {}"
        ).format(ident(f"{table}_id_seq"), writers)
        for dependent in _CASCADED.get(table, ()):
            if dependent in existing:
                yield sql.SQL("GRANT SELECT, UPDATE, DELETE ON {} TO onemap_staff").format(ident(dependent))
        for dependent in _WRITTEN_WITH.get(table, ()):
            if dependent in existing:
                yield sql.SQL("GRANT INSERT ON {} TO {}").format(ident(dependent), writers)
                yield sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(ident(f"{dependent}_id_seq"), writers)
                yield sql.SQL("CREATE POLICY onemap_grid_write ON {} FOR INSERT TO onemap_grid WITH CHECK ({})").format(
                    ident(dependent), sql.SQL(_GRID_PREDICATE[dependent]))
    for layer in LAYERS:
        readers = [r for r in _ALL_ROLES if _may_read_layer(r, layer)]
        yield sql.SQL("REVOKE ALL ON {} FROM {}").format(ident(layer.view), everyone)
        if readers:
            yield sql.SQL("GRANT SELECT ON {} TO {}").format(ident(layer.view), sql.SQL(", ").join(map(ident, readers)))
    for function in _WITHDRAW_FUNCTIONS:
        yield sql.SQL(
            "DO $$ BEGIN IF to_regprocedure({name}) IS NOT NULL THEN "
            "EXECUTE 'GRANT EXECUTE ON FUNCTION ' || {name} || ' TO onemap_grid'; END IF; END $$"
        ).format(name=sql.Literal(function))
    if "access_log" in existing:
        # append-only: the roles may add entries, never read or change them
        yield sql.SQL("GRANT INSERT ON access_log TO {}").format(everyone)
        yield sql.SQL("GRANT USAGE ON SEQUENCE access_log_id_seq TO {}").format(everyone)
    if "notifications" in existing:
        # the outbox: a scoped change (a case) writes its notifications with it; the worker, as owner, reads them
        yield sql.SQL("GRANT INSERT ON notifications TO {}").format(everyone)
        yield sql.SQL("GRANT USAGE ON SEQUENCE notifications_id_seq TO {}").format(everyone)
    if "layer_versions" in existing:
        # read beside every tile; the triggers that bump it run as its owner
        yield sql.SQL("REVOKE ALL ON layer_versions FROM {}").format(everyone)
        yield sql.SQL("GRANT SELECT ON layer_versions TO {}").format(everyone)


def _role_statements() -> Iterator[sql.Composable]:
    for role in _ALL_ROLES:
        yield sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) "
            "THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
        ).format(name=sql.Literal(role), role=sql.Identifier(role))
        # the connecting user switches into these roles per transaction
        yield sql.SQL(
            "DO $$ BEGIN IF NOT pg_has_role(current_user, {name}, 'MEMBER') "
            "THEN EXECUTE format('GRANT %I TO %I', {name}, current_user); END IF; END $$"
        ).format(name=sql.Literal(role))


def _layer_tables() -> set[str]:
    tables = {layer.table for layer in LAYERS}
    for layer in LAYERS:
        for join in layer.joins:
            tables.add(join.split()[2])  # "LEFT JOIN <table> <alias> ON ..."
    return tables


def _may_read(role: str, table: str, public_tables: set[str]) -> bool:
    if role == "onemap_public":
        return table in public_tables
    if role == "onemap_analyst":
        return table not in _PERSONAL_TABLES
    return True


def _may_read_layer(role: str, layer) -> bool:
    return any(DB_ROLES[r] == role for r in layer.read_roles if r in DB_ROLES)


def _policies(table: str, *, public: bool, editable: bool, grid_deletes: bool = False,
              read_extra: str | None = None) -> Iterator[sql.Composable]:
    ident = sql.Identifier(table)
    for name in ("onemap_everything", "onemap_public_read", "onemap_grid_read", "onemap_grid_write",
                 "onemap_grid_update", "onemap_grid_delete"):
        yield sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(name), ident)
    yield sql.SQL(
        "CREATE POLICY onemap_everything ON {} TO onemap_staff, onemap_analyst USING (true) WITH CHECK (true)"
    ).format(ident)
    if public:
        yield sql.SQL("CREATE POLICY onemap_public_read ON {} FOR SELECT TO onemap_public USING (true)").format(ident)
    grid = sql.SQL(_GRID_PREDICATE.get(table, _DEFAULT_GRID_PREDICATE))
    readable = grid if read_extra is None else sql.SQL("({}) OR {}").format(grid, sql.SQL(read_extra))
    yield sql.SQL("CREATE POLICY onemap_grid_read ON {} FOR SELECT TO onemap_grid USING ({})").format(ident, readable)
    if editable:
        check = sql.SQL(_WRITE_CHECK)
        yield sql.SQL("CREATE POLICY onemap_grid_write ON {} FOR INSERT TO onemap_grid WITH CHECK ({})").format(ident, check)
        yield sql.SQL(
            "CREATE POLICY onemap_grid_update ON {} FOR UPDATE TO onemap_grid USING ({}) WITH CHECK ({})"
        ).format(ident, grid, check)
        if grid_deletes:
            yield sql.SQL(
                "CREATE POLICY onemap_grid_delete ON {} FOR DELETE TO onemap_grid USING ({})").format(ident, grid)
