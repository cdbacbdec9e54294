"""One database view per published layer: only its publishable rows and columns.

The views are rebuilt from :mod:`layers.catalogue` after every ``migrate``, so the
catalogue and the database cannot drift apart. They read with the caller's rights
(``security_invoker``), so the row-level security of the tables beneath applies to
whoever queries them (see :mod:`layers.access`); an aggregate view that must count
rows its reader may not see reads as its owner and scopes itself.
"""

from __future__ import annotations

from psycopg import sql

from layers.catalogue import LAYERS, Layer

SEALED_COLUMN = "_sealed"


def sync_views(*, using: str = "default") -> list[str]:
    """(Re)create every layer's view; returns the view names."""
    from django.db import connections

    connection = connections[using]
    with connection.cursor() as cursor:
        raw = cursor.connection
        for layer in LAYERS:
            cursor.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(layer.view)).as_string(raw))
            cursor.execute(view_sql(layer).as_string(raw))
    return [layer.view for layer in LAYERS]


def view_sql(layer: Layer) -> sql.Composed:
    """``CREATE VIEW ogc_<id>`` for a layer. Column expressions come from the catalogue, which is code."""
    # The catalogue's SQL fragments are static strings written in this repository,
    # never user input; they are the one place raw SQL is composed.
    if layer.view_body:
        return sql.SQL("CREATE VIEW {view} AS {body}").format(
            view=sql.Identifier(layer.view), body=sql.SQL(layer.view_body)
        )
    columns = [sql.SQL("t.id")]
    columns += [sql.SQL("{} AS {}").format(sql.SQL(c.sql), sql.Identifier(c.name)) for c in layer.columns]
    if layer.sealed is not None:  # the blob only: no role's SQL can read what it holds
        columns.append(sql.SQL("{} AS {}").format(sql.SQL(layer.sealed.sql), sql.Identifier(SEALED_COLUMN)))
    columns.append(sql.SQL("t.geom"))
    query = sql.SQL("CREATE VIEW {view} WITH (security_invoker = true) AS SELECT {cols} FROM {table} t {joins}{where}").format(
        view=sql.Identifier(layer.view),
        cols=sql.SQL(", ").join(columns),
        table=sql.Identifier(layer.table),
        joins=sql.SQL(" ").join(sql.SQL(j) for j in layer.joins),
        where=sql.SQL(" WHERE {}").format(sql.SQL(layer.where)) if layer.where else sql.SQL(""),
    )
    return query
