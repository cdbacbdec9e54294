"""Which tables generators own, and whether a database holds anything but generated rows."""

from __future__ import annotations

from psycopg import sql


def synthetic_tables() -> list[str]:
    """Every table of the spatial app with a ``synthetic`` flag (also ones added later)."""
    from django.apps import apps

    return sorted(
        model._meta.db_table
        for model in apps.get_app_config("onemap").get_models()
        if any(field.name == "synthetic" for field in model._meta.concrete_fields)
    )


def tables_with_real_rows(cursor, tables: list[str]) -> list[str]:
    """The tables among ``tables`` holding at least one row with ``synthetic = false``."""
    return [
        table
        for table in tables
        if cursor.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE NOT synthetic)").format(sql.Identifier(table))
        ).fetchone()[0]
    ]


def truncate(cursor, tables: list[str]) -> None:
    """Empty ``tables`` and what references them, restarting their ids."""
    cursor.execute(
        sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
    )
