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
    """Empty ``tables`` and what references them, restarting their ids.

    Users' roles (``access_profiles``, which refer to grids) are set aside first;
    :func:`restore_access_profiles` puts them back once the new grids are in.
    """
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS kept_access_profiles ON COMMIT DROP AS "
        "SELECT p.user_id, p.role, g.code AS grid_code, p.department, p.created_at "
        "FROM access_profiles p LEFT JOIN grids g ON g.id = p.grid_id"
    )
    cursor.execute(
        sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
    )


def restore_access_profiles(cursor) -> int:
    """Give users back the roles a truncation set aside; a grid worker needs their grid's code to exist again.

    Returns how many grid workers could not be bound again (their grid is gone).
    """
    cursor.execute("SELECT to_regclass('pg_temp.kept_access_profiles') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return 0
    cursor.execute(
        "INSERT INTO access_profiles (user_id, role, grid_id, department, created_at) "
        "SELECT k.user_id, k.role, g.id, k.department, k.created_at FROM kept_access_profiles k "
        "LEFT JOIN grids g ON g.code = k.grid_code AND g.level = 3 "
        "WHERE (k.role = 'grid_worker') = (g.id IS NOT NULL) ON CONFLICT (user_id) DO NOTHING"
    )
    cursor.execute("SELECT count(*) FROM kept_access_profiles k WHERE k.role = 'grid_worker' "
                   "AND NOT EXISTS (SELECT 1 FROM grids g WHERE g.code = k.grid_code AND g.level = 3)")
    unbound = cursor.fetchone()[0]
    cursor.execute("DROP TABLE kept_access_profiles")
    return unbound
