"""The server's items and item statements as SQL text with their literals inlined, for PostGIS alone.

``tests/bench/ogc.py`` runs this text with pgbench as the "PostGIS alone" target, and
``tests/test_ogc_features.py`` checks that it gives exactly the server's features. The
statements are ``layers.features``' own; only inlining the literals happens here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import psycopg

from core.settings import database_url
from layers.catalogue import layer as find_layer
from layers.features import FeatureQuery, item_key, item_statement, items_statement, parse_query


def items_sql_text(layer_id: str, query_string: str, *, role: str = "analyst", steady: bool = True) -> str:
    """The SQL of an items request with literals inlined.

    ``steady`` gives the statement a running server sends once the layer's count is
    cached (it checks the data version instead of counting); otherwise the first one.
    """
    layer = find_layer(layer_id)
    query = parse_query(dict(parse_qsl(query_string, keep_blank_values=True)), layer=layer, role=role)
    with _connect() as conn:
        cached = None
        if steady:
            statement, params = items_statement(layer, role, query)
            _, _, matched, version = conn.execute(statement, params).fetchone()
            cached = (version, matched)
        statement, params = items_statement(layer, role, query, cached_count=cached)
        return psycopg.ClientCursor(conn).mogrify(statement, params)


def item_sql_text(layer_id: str, item_id: str, *, role: str = "analyst") -> str:
    """The SQL of an item request with literals inlined."""
    layer = find_layer(layer_id)
    statement, _ = item_statement(layer, role, FeatureQuery())
    with _connect() as conn:
        return psycopg.ClientCursor(conn).mogrify(statement, [item_key(layer, item_id)])


def _connect() -> psycopg.Connection:
    """A connection to the database the settings name (``ONEMAP_DATABASE_URL`` or the embedded one)."""
    return psycopg.connect(database_url())
